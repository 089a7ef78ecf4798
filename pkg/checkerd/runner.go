package checkerd

import (
	"context"

	"github.com/vrrpkit/vrrpkit/pkg/scriptrun"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// ScriptsSocket is the supervisor's ScriptRunner socket in the run
// directory (control.proto, service ScriptRunner).
const ScriptsSocket = "scripts.sock"

// ScriptRunnerClient runs vrrp_scripts and MISC_CHECKs through the
// supervisor's ScriptRunner service: checkerd never forks.
type ScriptRunnerClient struct {
	*scriptrun.Client
}

// NewScriptRunnerClient returns a client of the ScriptRunner on the Unix
// socket path (scriptrun.NewClient).
func NewScriptRunnerClient(path string) (*ScriptRunnerClient, error) {
	c, err := scriptrun.NewClient(path)
	if err != nil {
		return nil, err
	}
	return &ScriptRunnerClient{c}, nil
}

// RunScript implements track.ScriptRunner.
func (r *ScriptRunnerClient) RunScript(ctx context.Context, generation uint64, name string) (scriptrun.Result, error) {
	return r.Run(ctx, generation, pb.ScriptKind_SCRIPT_KIND_VRRP_SCRIPT, name)
}
