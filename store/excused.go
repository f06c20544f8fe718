package store

import (
	"context"
	"encoding/json"

	"github.com/rebootmgr/rebootmgr/health"
)

// PythonIgnoreFailedChecks is the Python rebootmgr's list of nodes whose failing checks (and
// failed Consul membership) it ignored: ignore_failed_checks, a JSON list of node names.
// rebootmgr does not honour it (a check an operator excused that way holds its reboots), and
// says so where it matters (see noteExcused).
func (k Keys) PythonIgnoreFailedChecks() string { return k.at("ignore_failed_checks") }

// noteExcused adds to rep, a report that fails, that the Python rebootmgr's
// ignore_failed_checks names nodes of its failing instances, which rebootmgr counts. A key that
// cannot be read or decoded adds nothing: it is only a note.
func (c *Consul) noteExcused(ctx context.Context, rep *health.Report) {
	key := c.Keys.PythonIgnoreFailedChecks()
	pair, err := c.get(ctx, key, "read key "+key)
	if err != nil || pair == nil {
		return
	}
	var nodes []string
	if json.Unmarshal(pair.Value, &nodes) != nil {
		return
	}
	rep.NoteExcused(key, nodes)
}
