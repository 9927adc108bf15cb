//go:build unix

package pgtest

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// serverOSUser is the OS account the cluster runs as when the tests run as
// root: initdb and postgres refuse to run as root.
const serverOSUser = "postgres"

// osUser is an account to run server programs as; nil means the current one.
type osUser struct {
	name     string
	uid, gid uint32
}

// serverAccount returns the account to run the cluster as: nil when not root,
// else the postgres OS user.
func serverAccount() (*osUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(serverOSUser)
	if err != nil {
		return nil, fmt.Errorf("running as root, so the cluster must run as the %q OS user, but: %w; "+
			"create it (useradd --system %s), run the tests as another user, or set DATABASE_URL",
			serverOSUser, err, serverOSUser)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("OS user %q has a non-numeric uid %q or gid %q", serverOSUser, u.Uid, u.Gid)
	}
	return &osUser{name: serverOSUser, uid: uint32(uid), gid: uint32(gid)}, nil
}

// chown gives path to the server account, so the cluster can use it.
func (u *osUser) chown(path string) error {
	if u == nil {
		return nil
	}
	return os.Chown(path, int(u.uid), int(u.gid))
}

// setSysProcAttr makes cmd run as u and, if detach, in its own session, so that a
// Ctrl-C meant for the test binary does not reach it.
func setSysProcAttr(cmd *exec.Cmd, u *osUser, detach bool) {
	attr := &syscall.SysProcAttr{Setsid: detach}
	if u != nil {
		attr.Credential = &syscall.Credential{Uid: u.uid, Gid: u.gid}
	}
	cmd.SysProcAttr = attr
}

// killSession kills a process started with detach and everything in its session
// (the watchdog's sleep), then reaps it.
func killSession(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
}

// worldSearchable reports whether every directory from dir up to / can be
// entered by any user, which the server account needs to reach its cluster.
func worldSearchable(dir string) bool {
	for {
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return true
		}
		dir = parent
	}
}

const watchdogSupported = true
