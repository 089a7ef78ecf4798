package vrrpd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// SystemClock is the real clock. Its sleeper waits on a timerfd (an
// absolute CLOCK_MONOTONIC deadline, timerfd_create(2)) on the loop's own
// OS thread, and the loop runs the expired timers on that same thread: the
// wake-up goes from the kernel's hrtimer straight to the code that sends the
// advert, with no hand-off through Go's timer heap, netpoller (which sleeps
// in whole milliseconds) or scheduler. keepalived does the same in one
// thread (epoll on a timerfd).
type SystemClock struct {
	// RTPriority, when above 0, asks for SCHED_FIFO at that priority for
	// the loop's thread only (sched(7)), so that a CPU-bound process of
	// normal priority cannot delay a takeover or an advert. It needs
	// RLIMIT_RTPRIO >= RTPriority (the supervisor raises it for vrrpd) or
	// CAP_SYS_NICE; without either the thread stays SCHED_OTHER and Log
	// says so. keepalived's vrrp_rt_priority is the same knob.
	RTPriority int
	Log        *slog.Logger
}

// Now is time.Now: its monotonic reading makes deadlines immune to clock
// steps.
func (SystemClock) Now() time.Time { return time.Now() }

// NewSleeper locks the calling goroutine to its thread for good (the thread
// ends with the goroutine), sets the thread's timer slack to 1 ns
// (prctl(2) PR_SET_TIMERSLACK; the default 50 µs is added to every
// timerfd-less wait), and asks for RTPriority.
func (c SystemClock) NewSleeper() (Sleeper, error) {
	runtime.LockOSThread()
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0); err != nil {
		log.Warn("setting the timer thread's timer slack", "err", err)
	}
	if c.RTPriority > 0 {
		attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: uint32(c.RTPriority)}
		if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
			log.Warn("timer thread stays at normal priority (raise RLIMIT_RTPRIO or grant CAP_SYS_NICE for SCHED_FIFO)",
				"rt_priority", c.RTPriority, "err", err)
		} else {
			log.Info("timer thread runs SCHED_FIFO", "rt_priority", c.RTPriority)
		}
	}
	tfd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_CLOEXEC|unix.TFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("vrrpd: timerfd_create: %w", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(tfd)
		return nil, fmt.Errorf("vrrpd: eventfd: %w", err)
	}
	return &timerfdSleeper{tfd: tfd, efd: efd}, nil
}

type timerfdSleeper struct {
	tfd, efd int
	fds      [2]unix.PollFd
	buf      [8]byte
}

// preciseMargin is how long before a precise deadline the sleeper wakes,
// to spin the rest. Measured here (a KVM guest): a timerfd or
// clock_nanosleep(2) wake-up comes 45-60 µs after its time, and up to 1 ms
// after a second's sleep, as the idle vCPU is rescheduled; a spinning one
// answers at once. The spin costs at most this much CPU per takeover (and
// per rare deadline that an advert pushes back in the last moment).
const preciseMargin = 500 * time.Microsecond

func (s *timerfdSleeper) Sleep(deadline time.Time, precise bool) {
	var spec unix.ItimerSpec // zero: disarmed
	if !deadline.IsZero() {
		d := time.Until(deadline)
		if precise {
			d -= preciseMargin
		}
		// CLOCK_MONOTONIC is the clock behind time.Now's monotonic reading,
		// but that reading's origin is private to the runtime: translate
		// through the distance from now.
		var mono unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono); err != nil {
			return
		}
		spec.Value = unix.NsecToTimespec(mono.Nano() + int64(max(d, time.Nanosecond)))
	}
	if err := unix.TimerfdSettime(s.tfd, unix.TFD_TIMER_ABSTIME, &spec, nil); err != nil {
		return
	}
	s.fds = [2]unix.PollFd{{Fd: int32(s.tfd), Events: unix.POLLIN}, {Fd: int32(s.efd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(s.fds[:], -1)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EINTR) {
			return
		}
	}
	woken := s.fds[1].Revents&unix.POLLIN != 0
	// Drain what fired; both are non-blocking, so one that did not fire
	// just says EAGAIN.
	_, _ = unix.Read(s.tfd, s.buf[:])
	_, _ = unix.Read(s.efd, s.buf[:])
	if precise && !woken {
		// The loop re-checks after the spin: an advert that came meanwhile
		// moved the deadline, and the spin is bounded by preciseMargin.
		for time.Now().Before(deadline) {
		}
	}
}

func (s *timerfdSleeper) Wake() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = unix.Write(s.efd, one[:])
}

func (s *timerfdSleeper) Close() error {
	return errors.Join(unix.Close(s.tfd), unix.Close(s.efd))
}
