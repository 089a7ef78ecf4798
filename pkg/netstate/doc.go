// Package netstate holds the kernel network state that vrrpd owns: virtual IP
// addresses (VIPs) today, and VMAC macvlans and virtual routes and rules later,
// all through rtnetlink(7). It also watches network interfaces so that VRRP
// instances can react to links going down, coming up, disappearing or being
// re-created.
//
// Two rules shape the package:
//
//   - vrrpkit removes only what it added. [Addresses] records every address it
//     adds; an address that was already present is left alone, forever, just as
//     keepalived leaves VIPs it did not configure.
//   - Nothing is global. Every manager is a value bound to one network
//     namespace (the caller's, or one given explicitly), so tests and several
//     daemons can run side by side in one process.
//
// The package keeps no goroutines of its own except while [Links.WatchLinks]
// runs, and those have exited by the time it returns.
package netstate
