//go:build !unix

package pgtest

import "os/exec"

type osUser struct{ name string }

func serverAccount() (*osUser, error)         { return nil, nil }
func (u *osUser) chown(string) error          { return nil }
func setSysProcAttr(*exec.Cmd, *osUser, bool) {}
func killSession(cmd *exec.Cmd)               { _ = cmd.Process.Kill(); _ = cmd.Wait() }
func worldSearchable(string) bool             { return true }

const watchdogSupported = false
