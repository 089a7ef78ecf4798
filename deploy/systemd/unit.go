// Package systemd holds vrrpkit's systemd unit. `make install` installs the
// file; it is embedded here too so that tests (and, later, a binary that
// prints it) read the same bytes.
package systemd

import _ "embed"

// Unit is the text of vrrpkit.service.
//
//go:embed vrrpkit.service
var Unit string
