package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/clip"
	"github.com/rebootmgr/rebootmgr/logkey"
)

// A reboot takes the node's reboot request as it starts: it writes the key again, with
// check-and-set, marked as taken (see TakenValue), and keeps the index of that write in its
// entry of the lock. Its end deletes the key only at that index. Consul keeps a key's index
// when it is written with the value it has, so without the take a request written again as it
// was (the same words, by an operator or a script after the next kernel) would be deleted with
// the one the reboot did. Any write after the take changes the index: a new request, kept.

// takenMark begins what a take adds to the request's value.
const takenMark = " (taken by the reboot of "

// takeTries is how often a take reads the request again when it changed between the read and
// the write.
const takeTries = 3

// TakenValue is value marked as taken by node's reboot at at, without the mark of an earlier
// take, within clip.Max bytes (value cut if need be).
func TakenValue(value, node string, at time.Time) string {
	value, _ = Untaken(value)
	mark := takenMark + node + " at " + at.UTC().Format(time.RFC3339) + ")"
	return clip.Within(value, clip.Max-len(mark)) + mark
}

// Untaken is value without the mark of the reboot that took it, and whether it had one.
func Untaken(value string) (string, bool) {
	i := strings.LastIndex(value, takenMark)
	if i < 0 || !strings.HasSuffix(value, ")") {
		return value, false
	}
	return value[:i], true
}

// taken is the request a reboot took: its value before the take, to give it back when the
// reboot does not happen, and the index of the take (0: there was no request to take).
type taken struct {
	value string
	index uint64
}

// takeRequest takes the node's reboot request (see TakenValue), read again if it changed
// meanwhile. A take refused (by an ACL, or Consul) is an error: the reboot does not start, and
// the request is as it was.
func (p *Pipeline) takeRequest(ctx context.Context, now time.Time) (taken, error) {
	for range takeTries {
		f, err := p.Store.Trigger(ctx, p.Node)
		if err != nil || !f.Set {
			return taken{}, err
		}
		index, err := p.Store.RewriteTrigger(ctx, p.Node, f.Index, TakenValue(f.Value, p.Node, now))
		if err != nil {
			return taken{}, fmt.Errorf("take the reboot request (not rebooting; the request is as it was): %w", err)
		}
		if index != 0 {
			return taken{value: f.Value, index: index}, nil
		}
	}
	return taken{}, errors.New("the reboot request changed every time it was taken: not rebooting now")
}

// giveBack puts back the request a reboot that will not happen took, unless it was written
// since (a new request, kept as it is). Not put back, it still asks, marked taken.
func (p *Pipeline) giveBack(ctx context.Context, t taken) {
	if t.index == 0 {
		return
	}
	index, err := p.Store.RewriteTrigger(ctx, p.Node, t.index, t.value)
	switch {
	case err != nil:
		p.Logger.Error("could not put the reboot request back: it stays, marked taken, and still asks", logkey.Err, err)
	case index == 0:
		p.Logger.Info("reboot request written again since the reboot took it: kept as it is")
	}
}
