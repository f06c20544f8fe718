package web

import (
	"maps"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/fleet"
	"github.com/rebootmgr/rebootmgr/lock"
)

var rollAt = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// render is the rendering of the snapshot s, or the test fails.
func render(t testing.TB, s fleet.Snapshot) *Rendering {
	t.Helper()
	r, err := Render(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestTimeAloneChangesNoRow: read again later with nothing changed in Consul, the fleet changes
// no row and no part: holders' times and the timeline's geometry follow the time in the page,
// queue estimates are shown to the minute.
func TestTimeAloneChangesNoRow(t *testing.T) {
	s := bigFleet(200, rollAt)
	before := render(t, s)
	s.At = s.At.Add(10 * time.Second)
	after := render(t, s)
	if u := Diff(before, after); len(u.Rows) > 0 || len(u.Gone) > 0 || len(u.Parts) > 0 {
		t.Fatalf("10 s later, with nothing changed, the update carries rows %v, gone %v, parts %v", keys(u.Rows), u.Gone, u.Parts)
	}
}

func keys(rows map[string]map[string]string) map[string][]string {
	out := map[string][]string{}
	for section, r := range rows {
		for id := range r {
			out[section] = append(out[section], id)
		}
	}
	return out
}

// TestWebBytesPerChange: at 1,000 nodes, a change is sent as the rows it changed, not as the
// whole fleet: a node's daemon saying something new is its row; a holder that goes from
// preparing to rebooting is its row, its group's row, its row of the timeline, and the rows of
// the nodes waiting in its group, whose lock gate names the holders with their phases. The
// figures are logged (see docs/operations.md).
func TestWebBytesPerChange(t *testing.T) {
	const nodes = 1000
	s := bigFleet(nodes, rollAt)
	before := render(t, s)
	whole := Whole(before)
	whole.Seq, whole.At = 1, before.At
	full, err := whole.event("e")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d nodes: the whole state is %d bytes, sent once as a browser connects (before, every change sent it)", nodes, len(full))
	g := s.Groups["compute"]
	idle := "node-0999"
	for _, tc := range []struct {
		name   string
		change func(s *fleet.Snapshot)
		rows   map[string]int
	}{
		{"a daemon's status", func(s *fleet.Snapshot) {
			d := s.Daemons[idle]
			d.Status = "idle: checked at 12:00:01"
			s.Daemons[idle] = d
		}, map[string]int{"node": 1}},
		{"a holder's phase", func(s *fleet.Snapshot) {
			g := s.Groups["compute"]
			g.Lock.Holders = append([]lock.Holder(nil), g.Lock.Holders...)
			g.Lock.Holders[1].Phase = lock.Rebooting
			s.Groups["compute"] = g
		}, map[string]int{"node": 1 + len(g.Queue.Entries), "group": 1, "tl": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			changed := s
			changed.Daemons = maps.Clone(s.Daemons)
			changed.Groups = maps.Clone(s.Groups)
			tc.change(&changed)
			changed.At = rollAt.Add(time.Second)
			u := Diff(before, render(t, changed))
			u.Seq = 2
			delta, err := u.event("e")
			if err != nil {
				t.Fatal(err)
			}
			for section, want := range tc.rows {
				if len(u.Rows[section]) != want {
					t.Errorf("%s rows sent: %v, want %d", section, keys(u.Rows)[section], want)
				}
			}
			if len(u.Rows) != len(tc.rows) || len(u.Gone) > 0 || len(u.Parts) > 0 {
				t.Fatalf("the update carries rows %v, gone %v, parts %v", keys(u.Rows), u.Gone, u.Parts)
			}
			t.Logf("%d nodes, %s: %d bytes (%d rows)", nodes, tc.name, len(delta), len(u.Rows["node"])+len(u.Rows["group"])+len(u.Rows["tl"]))
			if len(delta)*10 > len(full) {
				t.Fatalf("the change is %d bytes, over a tenth of the whole state's %d", len(delta), len(full))
			}
		})
	}
}

// TestRowsLentAreTheSame: a rendering that takes the unchanged nodes' rows from the one before
// is the rendering made afresh.
func TestRowsLentAreTheSame(t *testing.T) {
	s := bigFleet(200, rollAt)
	prev := render(t, s)
	g := s.Groups["storage"]
	g.Lock.Holders = append([]lock.Holder(nil), g.Lock.Holders...)
	g.Lock.Holders[1].Phase = lock.Rebooting
	s.Groups = maps.Clone(s.Groups)
	s.Groups["storage"] = g
	s.At = rollAt.Add(time.Minute)
	lent, err := Render(s, prev)
	if err != nil {
		t.Fatal(err)
	}
	if fresh := render(t, s); lent.Fleet() != fresh.Fleet() || lent.Timeline() != fresh.Timeline() {
		t.Fatal("the rendering with rows lent differs from the one made afresh")
	}
}
