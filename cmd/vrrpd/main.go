// Command vrrpd runs the VRRP instances and owns the kernel state they need
// (VRRP sockets, VIPs, gratuitous ARP / unsolicited NA). The supervisor
// starts it with CAP_NET_RAW and CAP_NET_ADMIN only and pushes its
// configuration over gRPC on <run-dir>/vrrpd.sock; vrrpd never reads
// keepalived.conf itself. The process is package vrrpdcmd.
package main

import (
	"os"

	"github.com/vrrpkit/vrrpkit/pkg/vrrpd/vrrpdcmd"
)

var version = "dev"

func main() {
	os.Exit(vrrpdcmd.Main(os.Args[1:], os.Stdout, os.Stderr, version))
}
