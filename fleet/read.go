package fleet

import (
	"context"
	"time"
)

// Source reads what Consul holds of the fleet into a snapshot (store.Consul.FleetSnapshot),
// with a bounded number of requests: all of it but when it was taken and what only the node
// status runs on knows of itself.
type Source interface {
	FleetSnapshot(ctx context.Context) (Snapshot, error)
}

// Reader takes a snapshot: what Source reads of Consul, and what this node knows of itself.
type Reader struct {
	Source Source
	// Local is the node this runs on; LocalFiles are its reboot-required files, LocalState what
	// else it knows of itself (nil: nothing).
	Local      string
	LocalFiles []string
	LocalState *Local
	// FileExists reports whether a local file exists (injected for tests).
	FileExists func(path string) bool
	Now        func() time.Time
}

// Read takes the snapshot.
func (r Reader) Read(ctx context.Context) (Snapshot, error) {
	at := r.Now().UTC()
	s, err := r.Source.FleetSnapshot(ctx)
	if err != nil {
		return Snapshot{}, err
	}
	s.At, s.Local, s.LocalState = at, r.Local, r.LocalState
	for _, f := range r.LocalFiles {
		if r.FileExists(f) {
			s.LocalFiles = append(s.LocalFiles, f)
		}
	}
	return s, nil
}
