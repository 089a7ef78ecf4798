package config

import (
	"fmt"
	"strings"
)

// Pos is where a value came from: the file and the 1-based line in it. Values
// produced by a definition, ~SEQ or ~LST carry the position of the line that
// used them, which is where a user has to look.
type Pos struct {
	File string `json:"file"`
	Line int    `json:"line"`
}

func (p Pos) String() string {
	if p.File == "" {
		return fmt.Sprintf("line %d", p.Line)
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// Severity says whether a finding refuses the configuration.
type Severity uint8

const (
	// Warning: the configuration is accepted; the user should look.
	Warning Severity = iota
	// Error: the configuration is refused as a whole.
	Error
)

func (s Severity) String() string {
	if s == Error {
		return "error"
	}
	return "warning"
}

// Diagnostic is one finding about a configuration, printed as
// "path:line: severity: message".
type Diagnostic struct {
	Pos      Pos
	Severity Severity
	Message  string
	// Host is set for findings about this machine rather than about the
	// file (a missing interface or script): they depend on where the test runs.
	Host bool
}

func (d Diagnostic) String() string {
	return fmt.Sprintf("%s: %s: %s", d.Pos, d.Severity, d.Message)
}

// Diagnostics is every finding of one parse, in file order.
type Diagnostics []Diagnostic

// HasErrors reports whether any finding refuses the configuration.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == Error {
			return true
		}
	}
	return false
}

// Errors returns only the findings that refuse the configuration.
func (ds Diagnostics) Errors() Diagnostics {
	var out Diagnostics
	for _, d := range ds {
		if d.Severity == Error {
			out = append(out, d)
		}
	}
	return out
}

func (ds Diagnostics) String() string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// Error makes Diagnostics usable as the error of a refused configuration.
func (ds Diagnostics) Error() string {
	errs := ds.Errors()
	switch len(errs) {
	case 0:
		return "no errors"
	case 1:
		return errs[0].String()
	default:
		return fmt.Sprintf("%s (and %d more errors)", errs[0], len(errs)-1)
	}
}

// diags collects findings; the reader and the decoder share one.
type diags struct {
	list Diagnostics
	// max bounds the findings kept, so a pathological input (a fuzzed file,
	// a ~SEQ over a million bad lines) cannot exhaust memory.
	max int
}

func (d *diags) add(pos Pos, sev Severity, format string, args ...any) {
	if d.max > 0 && len(d.list) >= d.max {
		if len(d.list) == d.max {
			d.list = append(d.list, Diagnostic{Pos: pos, Severity: sev, Message: "too many findings; stopping the report here"})
		}
		if sev == Error {
			// The truncation marker must keep the verdict right.
			d.list[len(d.list)-1].Severity = Error
		}
		return
	}
	d.list = append(d.list, Diagnostic{Pos: pos, Severity: sev, Message: fmt.Sprintf(format, args...)})
}

// full reports whether no further finding would be kept, so that costly
// messages (suggestions) need not be computed.
func (d *diags) full() bool { return d.max > 0 && len(d.list) > d.max }

func (d *diags) errorf(pos Pos, format string, args ...any) { d.add(pos, Error, format, args...) }
func (d *diags) warnf(pos Pos, format string, args ...any)  { d.add(pos, Warning, format, args...) }

func (d *diags) hostf(pos Pos, format string, args ...any) {
	d.add(pos, Warning, format, args...)
	if n := len(d.list); n > 0 && d.list[n-1].Pos == pos {
		d.list[n-1].Host = true
	}
}
