// Command checkerd runs the vrrp_script, vrrp_track_file and
// vrrp_track_process evaluations (later the health checkers). The
// supervisor starts it as an unprivileged user with no capabilities; it
// decides health and streams transitions to vrrpd, and never touches the
// kernel itself. The process is package checkerd.
package main

import (
	"os"

	"github.com/vrrpkit/vrrpkit/pkg/checkerd"
)

var version = "dev"

func main() {
	os.Exit(checkerd.Main(os.Args[1:], os.Stdout, os.Stderr, version))
}
