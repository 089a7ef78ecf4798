package checkerd

import (
	"context"

	"github.com/vrrpkit/vrrpkit/pkg/scriptrun"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// kindRunner runs a script of a generation by kind and name: the
// supervisor's ScriptRunner (ScriptRunnerClient, scriptrun.Client).
type kindRunner interface {
	Run(ctx context.Context, generation uint64, kind pb.ScriptKind, name string) (scriptrun.Result, error)
}

// miscRunner is check.ScriptRunner for the real-server checks: a
// MISC_CHECK names its script (check.MiscScriptNames) in the generation
// the real servers run now, which the supervisor resolves in its own copy
// of it; checkerd never forks.
type miscRunner struct {
	rs  *realServers
	run kindRunner
}

func (m miscRunner) RunMisc(ctx context.Context, name string) (scriptrun.Result, error) {
	m.rs.mu.Lock()
	gen := m.rs.gen
	m.rs.mu.Unlock()
	return m.run.Run(ctx, gen, pb.ScriptKind_SCRIPT_KIND_MISC_CHECK, name)
}
