package watch

import (
	"slices"
	"testing"
)

// TestTap: a tap hears the events pending when it opens and every one sent after, until it
// closes, and takes none from the evaluation; it says whether every watch read all the while.
func TestTap(t *testing.T) {
	for _, tt := range []struct {
		name string
		// before happens before the tap opens, during while it is open.
		before, during func(e *Events)
		sources        []Source
		watching       bool
		pending        int
	}{
		{name: "no watch: not watching", during: func(e *Events) { e.Send(Event{Source: SourceTick}) },
			sources: []Source{SourceTick}, pending: 1},
		{name: "pending when it opens, and sent after", before: func(e *Events) {
			e.Reading("health of galera", true)
			e.Send(Event{Source: SourceHealth})
		}, during: func(e *Events) {
			e.Send(Event{Source: SourceStop})
			e.Send(Event{Source: SourceHealth})
		}, sources: []Source{SourceHealth, SourceStop}, watching: true, pending: 3},
		{name: "a watch that failed and recovered meanwhile", before: func(e *Events) { e.Reading("health of galera", true) }, during: func(e *Events) {
			e.Reading("health of galera", false)
			e.Reading("health of galera", true)
			e.Send(Event{Source: SourceHealth})
		}, sources: []Source{SourceHealth}, watching: false, pending: 1},
		{name: "a watch that has not started", before: func(e *Events) {
			e.Reading("health of galera", true)
			e.Reading("delayed source", false)
		}, watching: false},
		{name: "a full batch pending: what it dropped is not known", before: func(e *Events) {
			e.Reading("health of galera", true)
			for range MaxPending {
				e.Send(Event{Source: SourceLock})
			}
		}, sources: []Source{SourceLock}, watching: false, pending: MaxPending - 1},
		{name: "a watch that ended", before: func(e *Events) {
			e.Reading("health of galera", true)
			e.Reading("health of rabbitmq", false)
			e.Gone("health of rabbitmq")
		}, watching: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEvents()
			if tt.before != nil {
				tt.before(e)
			}
			tap := e.Tap()
			if !e.Tapped() {
				t.Fatal("not tapped while the tap is open")
			}
			if tt.during != nil {
				tt.during(e)
			}
			sources, watching := tap.Take()
			if !slices.Equal(sources, tt.sources) || watching != tt.watching {
				t.Fatalf("took %v, watching %v; want %v, %v", sources, watching, tt.sources, tt.watching)
			}
			if again, _ := tap.Take(); len(again) != 0 {
				t.Fatalf("took %v again", again)
			}
			tap.Close()
			e.Send(Event{Source: SourceLock})
			if again, _ := tap.Take(); len(again) != 0 || e.Tapped() {
				t.Fatalf("a closed tap heard %v", again)
			}
			if got := len(e.Take()); got != tt.pending+1 {
				t.Fatalf("the evaluation took %d events, want %d: the tap took some", got, tt.pending+1)
			}
		})
	}
}
