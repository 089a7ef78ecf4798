package vmlab_test

import "os/exec"

func hasHostProgram(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}
