package scriptrun

import (
	"errors"
	"log/slog"
	"os"
	"os/user"
	"strconv"
)

// DefaultScriptUser is the user keepalived runs scripts as when global_defs
// has no script_user and that user exists (lib/notify.c,
// get_default_script_user).
const DefaultScriptUser = "keepalived_script"

// ResolveDefaultUser applies keepalived's rule for the default script user
// when global_defs sets no script_user (lib/notify.c,
// get_default_script_user): keepalived_script if it exists, else the
// daemon's own user, root. With enable_script_security a missing
// keepalived_script is a configuration error in keepalived ("Unable to set
// default user keepalived_script for script"), and every script that names
// no user of its own is then not run; the error says so. Without it, the
// fallback to root is logged as a warning; call it once per configuration
// load, as keepalived reports it once per load. lookup nil is user.Lookup.
func ResolveDefaultUser(lookup func(name string) (*user.User, error), security bool, log *slog.Logger) (string, error) {
	if lookup == nil {
		lookup = user.Lookup
	}
	if _, err := lookup(DefaultScriptUser); err == nil {
		return DefaultScriptUser, nil
	} else if security {
		return "", startErr(ErrUnknownUser, "Unable to set default user %s for script (%v)", DefaultScriptUser, err)
	}
	if log != nil {
		log.Warn("default script user " + DefaultScriptUser + " does not exist: scripts that name no user run as root (set global_defs script_user)")
	}
	return "root", nil
}

// identity is who a script runs as.
type identity struct {
	uid, gid uint32
	groups   []uint32 // supplementary groups, set with setgroups(2)
}

// identity resolves cmd's user and group the way keepalived's set_uid_gid
// does (lib/notify.c): the user's primary group unless a group is named.
// A Command without a user takes the Runner's default user and group; no
// default user at all is the supervisor's own identity (keepalived's
// our_uid/our_gid).
func (r *Runner) identity(cmd Command) (identity, error) {
	name, group := cmd.User, cmd.Group
	if name == "" {
		name = r.DefaultUser
		if group == "" {
			group = r.DefaultGroup
		}
	}
	if name == "" {
		gid := uint32(os.Getegid())
		return identity{uid: uint32(os.Geteuid()), gid: gid, groups: []uint32{gid}}, nil
	}
	lookupUser := r.LookupUser
	if lookupUser == nil {
		lookupUser = user.Lookup
	}
	u, err := lookupUser(name)
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return identity{}, startErr(ErrUnknownUser, "Script user '%s' does not exist", name)
		}
		return identity{}, startErr(ErrUnknownUser, "Unable to resolve script username '%s' - ignoring (%v)", name, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return identity{}, startErr(ErrUnknownUser, "Script user '%s' has a non-numeric uid %q or gid %q", name, u.Uid, u.Gid)
	}
	id := identity{uid: uint32(uid), gid: uint32(gid)}
	if group != "" {
		lookupGroup := r.LookupGroup
		if lookupGroup == nil {
			lookupGroup = user.LookupGroup
		}
		g, err := lookupGroup(group)
		if err != nil {
			var unknown user.UnknownGroupError
			if errors.As(err, &unknown) {
				return identity{}, startErr(ErrUnknownUser, "Script group '%s' does not exist", group)
			}
			return identity{}, startErr(ErrUnknownUser, "Unable to resolve script group name '%s' - ignoring (%v)", group, err)
		}
		n, err := strconv.ParseUint(g.Gid, 10, 32)
		if err != nil {
			return identity{}, startErr(ErrUnknownUser, "Script group '%s' has a non-numeric gid %q", group, g.Gid)
		}
		id.gid = uint32(n)
	}
	// keepalived's set_script_env calls setgroups(1, &gid): the script has
	// its one group and none of the user's supplementary groups.
	id.groups = []uint32{id.gid}
	if r.InitGroups {
		ids, err := u.GroupIds()
		if err != nil {
			return identity{}, startErr(ErrUnknownUser, "Cannot read the groups of script user '%s': %v", name, err)
		}
		for _, s := range ids {
			n, err := strconv.ParseUint(s, 10, 32)
			if err == nil && uint32(n) != id.gid {
				id.groups = append(id.groups, uint32(n))
			}
		}
	}
	return id, nil
}
