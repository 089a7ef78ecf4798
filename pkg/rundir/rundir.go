// Package rundir names what lives in vrrpkit's run directory, so that every
// process spells the layout the same way (design.md, "Processes": all
// sockets live in one run directory, --run-dir to change it, so several
// daemons can run side by side in tests).
package rundir

import "path/filepath"

// Default is the run directory of an installed vrrpkit; systemd's
// RuntimeDirectory=vrrpkit creates it.
const Default = "/run/vrrpkit"

// File names inside the run directory.
const (
	// ControlSocket is the supervisor's socket for vrrpctl.
	ControlSocket = "control.sock"
	// VrrpdSocket is vrrpd's socket; the supervisor is its client.
	VrrpdSocket = "vrrpd.sock"
	// CheckerdSocket is checkerd's socket; the supervisor (ApplyConfig) and
	// vrrpd (Health) are its clients. The supervisor creates it and hands
	// the listener to checkerd, which cannot write to the directory.
	CheckerdSocket = "checkerd.sock"
	// ScriptsSocket is the supervisor's script runner (ScriptRunner), for
	// its children only.
	ScriptsSocket = "scripts.sock"
)

// Dir is a run directory.
type Dir string

// Control is the path of the supervisor's control socket.
func (d Dir) Control() string { return filepath.Join(string(d), ControlSocket) }

// Vrrpd is the path of vrrpd's socket.
func (d Dir) Vrrpd() string { return filepath.Join(string(d), VrrpdSocket) }

// Checkerd is the path of checkerd's socket.
func (d Dir) Checkerd() string { return filepath.Join(string(d), CheckerdSocket) }

// Scripts is the path of the supervisor's script-runner socket.
func (d Dir) Scripts() string { return filepath.Join(string(d), ScriptsSocket) }
