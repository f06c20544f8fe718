package store

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/hashicorp/consul/api"
)

// ErrFiltered means Consul left out results the token may not read: what rebootmgr sees is not
// the whole truth (a quorum counted on what is left could be wrong), so it does not act on it.
var ErrFiltered = errors.New("results hidden by Consul's ACLs (X-Consul-Results-Filtered-By-ACLs): the token needs read access to them (node_prefix, service_prefix and key_prefix read)")

// What Consul answered, as the store hands it on: errors.Is tells each apart whatever wraps
// it, and the error still says what Consul said.
var (
	// ErrDenied: Consul refused the token (a permission it lacks, a token it does not know).
	ErrDenied = errors.New("refused by Consul's ACLs")
	// ErrUnavailable: Consul could not be reached, or failed to answer (a server error).
	ErrUnavailable = errors.New("consul did not answer")
	// ErrTooLarge: Consul refused a request too large for it (a value, a transaction).
	ErrTooLarge = errors.New("too large for consul")
)

// consulError is an error of Consul's with its kind.
type consulError struct{ kind, err error }

func (e consulError) Error() string   { return e.err.Error() }
func (e consulError) Unwrap() []error { return []error{e.err, e.kind} }

// classify gives an error of a request to Consul its kind (ErrDenied, ErrUnavailable,
// ErrTooLarge), when it has one.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var status api.StatusError
	hasStatus := errors.As(err, &status)
	var urlErr *url.Error
	msg := err.Error()
	switch {
	case hasStatus && status.Code == http.StatusForbidden, strings.Contains(msg, "Permission denied"), strings.Contains(msg, "ACL not found"):
		return consulError{ErrDenied, err}
	case hasStatus && status.Code == http.StatusRequestEntityTooLarge, strings.Contains(msg, "too large"):
		return consulError{ErrTooLarge, err}
	case errors.As(err, &urlErr), hasStatus && status.Code >= 500:
		return consulError{ErrUnavailable, err}
	}
	return err
}

// reading is one read of Consul's, for its errors: what it reads ("read keys under X"), and
// the read permission that would see all of it, named when Consul hid results ("" for none).
type reading struct {
	what, needs string
}

// read is every read of Consul's that a decision or a report rests on: consistent (the
// servers' leader answers, whatever the agent's discovery_max_stale), and whole: results
// Consul hid from the token are ErrFiltered, never fewer results. Its errors name what was
// read, and carry their kind (see classify).
func read[T any](ctx context.Context, opts api.QueryOptions, r reading, get func(*api.QueryOptions) (T, *api.QueryMeta, error)) (T, *api.QueryMeta, error) {
	out, meta, err := readSome(ctx, opts, r, get)
	if err == nil && meta != nil && meta.ResultsFilteredByACLs {
		var zero T
		return zero, meta, r.filtered()
	}
	return out, meta, err
}

// readSome is read for a read whose results stand even when Consul hid some (what was found
// was found); meta says whether it did, and r.filtered is the error when what is missing
// matters.
func readSome[T any](ctx context.Context, opts api.QueryOptions, r reading, get func(*api.QueryOptions) (T, *api.QueryMeta, error)) (T, *api.QueryMeta, error) {
	q := opts
	q.RequireConsistent, q.AllowStale = true, false
	out, meta, err := get(q.WithContext(ctx))
	if err != nil {
		var zero T
		return zero, meta, fmt.Errorf("%s: %w", r.what, classify(err))
	}
	return out, meta, nil
}

// filtered is the error of r when Consul hid results from the token.
func (r reading) filtered() error {
	if r.needs == "" {
		return fmt.Errorf("%s: %w", r.what, ErrFiltered)
	}
	return fmt.Errorf("%s: %w (%s)", r.what, ErrFiltered, r.needs)
}
