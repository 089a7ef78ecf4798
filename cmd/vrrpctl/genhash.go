package main

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/spf13/cobra"

	"github.com/vrrpkit/vrrpkit/pkg/check"
)

// genhashCmd is keepalived's genhash: the MD5 of a URL's body, fetched the
// way HTTP_GET / SSL_GET fetch it, for a `digest` line. The flags are
// genhash's (genhash -s 192.0.2.10 -p 80 -u /index.html [-S] [-V host]).
func genhashCmd() *cobra.Command {
	var (
		server, url, vhost string
		port               uint16
		ssl, sni           bool
		timeout            time.Duration
	)
	cmd := &cobra.Command{
		Use:   "genhash -s SERVER -p PORT -u URL",
		Short: "print the MD5 digest of a URL's body, for HTTP_GET/SSL_GET digest lines",
		Long: "genhash fetches URL from SERVER:PORT exactly as vrrpkit's HTTP_GET (or, with -S,\n" +
			"SSL_GET) does, keepalived's request included, and prints the body's MD5 alone\n" +
			"on a line, as keepalived's genhash does.",
		Example: "  vrrpctl genhash -s 192.0.2.10 -p 80 -u /index.html\n" +
			"  vrrpctl genhash -S -s 192.0.2.10 -p 443 -u /health -V www.example.com --sni",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, err := netip.ParseAddr(server)
			if err != nil {
				return &cmdLineError{err: fmt.Errorf("-s %q: want an IP address: %v", server, err), usage: cmd}
			}
			if port == 0 || url == "" {
				return &cmdLineError{err: fmt.Errorf("genhash needs -p PORT and -u URL"), usage: cmd}
			}
			h := check.HTTP{
				Conn:        check.Conn{Target: netip.AddrPortFrom(addr, port), Timeout: timeout},
				TLS:         ssl,
				Virtualhost: vhost,
				EnableSNI:   sni,
			}
			code, digest, err := h.GenHash(cmd.Context(), url)
			if err != nil {
				return err
			}
			if code < 200 || code > 299 {
				// A digest line is checked only after the status passes.
				fmt.Fprintf(cmd.ErrOrStderr(), "vrrpctl: note: HTTP status %d (HTTP_GET wants 200-299 unless status_code says otherwise)\n", code)
			}
			// Only the digest, as keepalived's genhash prints it.
			_, err = fmt.Fprintln(cmd.OutOrStdout(), digest)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVarP(&server, "server", "s", "", "real server `address`")
	f.Uint16VarP(&port, "port", "p", 0, "real server `port`")
	f.StringVarP(&url, "url", "u", "", "`path` to fetch, e.g. /index.html")
	f.BoolVarP(&ssl, "use-ssl", "S", false, "fetch over TLS, as SSL_GET (the certificate is not verified, as in keepalived)")
	f.StringVarP(&vhost, "use-virtualhost", "V", "", "Host header (`name`), as virtualhost")
	f.BoolVar(&sni, "sni", false, "send the virtualhost as TLS SNI, as enable_sni")
	f.DurationVar(&timeout, "connect-timeout", 5*time.Second, "connect_timeout")
	return cmd
}
