package supervise

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary doubles as the supervised child: TestMain runs one of the
// modes below instead of the tests when envMode is set.
const (
	envMode = "SUPERVISE_TEST_MODE"
	envFile = "SUPERVISE_TEST_FILE" // pdeath-child: where to record SIGTERM
	envLive = "SUPERVISE_TEST_LIVE" // live: milliseconds to stay up
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(envMode); mode != "" {
		os.Exit(childMain(mode))
	}
	os.Exit(m.Run())
}

func childMain(mode string) int {
	switch mode {
	case "report": // print the privileges we have, then behave like "sleep"
		if err := reportStatus(); err != nil {
			fmt.Println("error:", err)
			return 2
		}
		return sleepUntilTerm()
	case "sleep":
		return sleepUntilTerm()
	case "crash":
		fmt.Println("crashing")
		return 3
	case "live":
		n, _ := strconv.Atoi(os.Getenv(envLive))
		time.Sleep(time.Duration(n) * time.Millisecond)
		return 1
	case "ignore-term": // ignore SIGTERM and leave a grandchild in our process group
		signal.Ignore(syscall.SIGTERM)
		self, _ := os.Executable()
		gc := exec.Command(self)
		gc.Env = []string{envMode + "=ignore-term-leaf"}
		if err := gc.Start(); err != nil {
			fmt.Println("error:", err)
			return 2
		}
		fmt.Println("grandchild", gc.Process.Pid)
		fmt.Println("ready")
		sleepForever()
	case "ignore-term-leaf":
		signal.Ignore(syscall.SIGTERM)
		sleepForever()
	case "pdeath-child":
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		fmt.Println("ready")
		<-ch
		msg := fmt.Sprintf("SIGTERM ppid=%d\n", os.Getppid())
		file := os.Getenv(envFile)
		// Written whole, then renamed: the test polls for the file.
		if os.WriteFile(file+".tmp", []byte(msg), 0o644) != nil || os.Rename(file+".tmp", file) != nil {
			return 2
		}
		return 0
	case "mini-supervisor":
		return miniSupervisor()
	}
	fmt.Fprintln(os.Stderr, "unknown mode", mode)
	return 2
}

func sleepUntilTerm() int {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM)
	fmt.Println("ready")
	<-ch
	fmt.Println("got SIGTERM")
	return 0
}

// reportStatus prints the capability, uid/gid and no_new_privs lines of
// /proc/self/status, and the securebits.
func reportStatus() error {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		for _, p := range []string{"Cap", "Uid:", "Gid:", "Groups:", "NoNewPrivs:"} {
			if strings.HasPrefix(sc.Text(), p) {
				fmt.Println(sc.Text())
			}
		}
	}
	bits, err := unix.PrctlRetInt(unix.PR_GET_SECUREBITS, 0, 0, 0, 0)
	if err != nil {
		return err
	}
	fmt.Printf("Securebits:\t%#x\n", bits)
	return sc.Err()
}

// miniSupervisor supervises a pdeath-child and prints its pid once it is
// ready; the test then kills us with SIGKILL to see the child get Pdeathsig.
func miniSupervisor() int {
	self, _ := os.Executable()
	out := newLineLog()
	c, err := New(Spec{
		Name:   "pdeath-child",
		Path:   self,
		Env:    []string{envMode + "=pdeath-child", envFile + "=" + os.Getenv(envFile)},
		Output: out,
	}, Options{})
	if err != nil {
		fmt.Println("error:", err)
		return 2
	}
	go c.Run(context.Background()) //nolint:errcheck // never returns: we get SIGKILLed
	if _, err := out.wait("ready", 10*time.Second); err != nil {
		fmt.Println("error:", err)
		return 2
	}
	fmt.Println("child", c.PID())
	sleepForever()
	return 0
}

func sleepForever() {
	for {
		time.Sleep(time.Hour)
	}
}
