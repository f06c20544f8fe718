package fleetlock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/rebootmgr/rebootmgr/clip"
	"github.com/rebootmgr/rebootmgr/ending"
	"github.com/rebootmgr/rebootmgr/health"
	"github.com/rebootmgr/rebootmgr/logkey"
	"github.com/rebootmgr/rebootmgr/place"
	"github.com/rebootmgr/rebootmgr/store"
)

// The kinds of a refusal: the fixed set a client may count by (Zincati labels its metric
// zincati_strategy_fleet_lock_errors_total{kind} with it). Each has one HTTP status (Status).
const (
	KindMissingHeader     = "missing_header"     // 400: no "fleet-lock-protocol: true"
	KindBadRequest        = "bad_request"        // 400: a body that is not a FleetLock request
	KindUnknownGroup      = "unknown_group"      // 400: a group no operator made (as airlock answers)
	KindUnauthorized      = "unauthorized"       // 401: the group needs a token and none came
	KindForbidden         = "forbidden"          // 403: a wrong token, or a group no token serves
	KindNotFound          = "not_found"          // 404: no such endpoint
	KindMethodNotAllowed  = "method_not_allowed" // 405: not a POST
	KindIDInUse           = "id_in_use"          // 409: the id is a node's that rebootmgr's daemon reboots, or another group's
	KindStopped           = "stopped"            // 423: the fleet's or the group's stop flag
	KindLockHeld          = "lock_held"          // 423: no room in the group's lock
	KindQueueFull         = "queue_full"         // 423: no room, and the group's queue holds as many as a host may join
	KindUnhealthy         = "unhealthy"          // 423: the host's services, or a quorum
	KindTooSoon           = "too_soon"           // 423: the host's last reboot ended less than the min reboot interval ago
	KindAlertsFiring      = "alerts_firing"      // 423: alerts the alerts gate counts fire
	KindConsulUnavailable = "consul_unavailable" // 503: Consul did not answer, or failed
	KindAlertsUnavailable = "alerts_unavailable" // 503: the alert source cannot be read
	KindError             = "error"              // 500: anything else
)

// Kinds is the fixed set of kinds, in the order above.
func Kinds() []string {
	return []string{KindMissingHeader, KindBadRequest, KindUnknownGroup, KindUnauthorized, KindForbidden, KindNotFound, KindMethodNotAllowed,
		KindIDInUse, KindStopped, KindLockHeld, KindQueueFull, KindUnhealthy, KindTooSoon, KindAlertsFiring, KindConsulUnavailable, KindAlertsUnavailable, KindError}
}

// Status is the HTTP status of a kind.
func Status(kind string) int {
	switch kind {
	case KindMissingHeader, KindBadRequest, KindUnknownGroup:
		return http.StatusBadRequest
	case KindUnauthorized:
		return http.StatusUnauthorized
	case KindForbidden:
		return http.StatusForbidden
	case KindNotFound:
		return http.StatusNotFound
	case KindMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case KindIDInUse:
		return http.StatusConflict
	case KindStopped, KindLockHeld, KindQueueFull, KindUnhealthy, KindTooSoon, KindAlertsFiring:
		return http.StatusLocked
	case KindConsulUnavailable, KindAlertsUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Refusal is a request answered with a non-2xx status and {"kind": ..., "value": ...}.
type Refusal struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
}

func (r *Refusal) Error() string { return r.Kind + ": " + r.Value }

// refusalOf is how err is answered. A client is told the kind and a text that names nothing
// of the server's inside (no address of Consul, no key, no Go error text): a gate's own words
// (a stop flag's reason, the holders, the rules that fail), or a fixed text; the error itself
// goes to the server's log (see refuseErr).
func refusalOf(err error) *Refusal {
	var r *Refusal
	switch {
	case errors.As(err, &r):
		return r
	case errors.Is(err, health.ErrMalformedTag):
		// A service's definition is wrong: no waiting fixes it.
		return &Refusal{Kind: KindError, Value: "a service of the host carries a rebootmgr rule tag that cannot be read: an operator must fix the service's definition"}
	case errors.Is(err, ending.ErrStopped):
		// The flag's own words, without the key it is at.
		if f, ok := place.StopFlagOf(err); ok {
			if v := strings.TrimSuffix(clip.OneLine(f.Value), ":"); v != "" {
				return &Refusal{Kind: KindStopped, Value: "stop flag is set (" + v + "): halted, nothing further is started"}
			}
			return &Refusal{Kind: KindStopped, Value: "stop flag is set: halted, nothing further is started"}
		}
		return &Refusal{Kind: KindStopped, Value: "stop flag is set: halted, nothing further is started"}
	case errors.Is(err, ending.ErrUnhealthy):
		return &Refusal{Kind: KindUnhealthy, Value: clip.OneLine(err.Error())}
	case errors.Is(err, ending.ErrLockHeld), errors.Is(err, place.ErrHeldElsewhere):
		return &Refusal{Kind: KindLockHeld, Value: clip.OneLine(err.Error())}
	case errors.Is(err, store.ErrUnavailable):
		return &Refusal{Kind: KindConsulUnavailable, Value: "the reboot lock cannot be read or written now: try again later"}
	}
	return &Refusal{Kind: KindError, Value: "the request could not be answered: an operator finds why in the server's log"}
}

// MaxBody bounds a request's body; a FleetLock request is a few dozen bytes.
const MaxBody = 64 << 10

// requestTimeout bounds the work of one request: its reads of Consul and its transaction.
const requestTimeout = 45 * time.Second

// ProtocolHeader must be "true" on every request.
const ProtocolHeader = "fleet-lock-protocol"

// Handler serves the FleetLock protocol on Locks, at any path that ends in /v1/pre-reboot or
// /v1/steady-state (Zincati joins them onto its base URL, which may carry a path).
type Handler struct {
	Locks  *Locks
	Tokens Tokens
	Logger *slog.Logger
}

// request is a FleetLock request's body; fields it does not know are ignored.
type request struct {
	ClientParams *struct {
		ID    string `json:"id"`
		Group string `json:"group"`
	} `json:"client_params"`
}

// DefaultGroup is the FleetLock group of a request that names none; it maps to rebootmgr's
// default (fleet-wide) group, store.DefaultGroup.
const DefaultGroup = "default"

// ServeHTTP answers one FleetLock request: 200, or a refusal.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := h.Logger.With(logkey.Remote, r.RemoteAddr, logkey.Path, r.URL.Path)
	var endpoint string
	switch {
	case strings.HasSuffix(r.URL.Path, "/v1/pre-reboot"):
		endpoint = "pre-reboot"
	case strings.HasSuffix(r.URL.Path, "/v1/steady-state"):
		endpoint = "steady-state"
	default:
		refuse(w, log, &Refusal{Kind: KindNotFound, Value: "no FleetLock endpoint at " + r.URL.Path + ": POST .../v1/pre-reboot or .../v1/steady-state"})
		return
	}
	log = log.With(logkey.API, endpoint)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		refuse(w, log, &Refusal{Kind: KindMethodNotAllowed, Value: r.Method + " " + r.URL.Path + ": only POST"})
		return
	}
	if r.Header.Get(ProtocolHeader) != "true" {
		refuse(w, log, &Refusal{Kind: KindMissingHeader, Value: "a FleetLock request carries the header " + ProtocolHeader + ": true"})
		return
	}
	host, group, err := readRequest(w, r)
	if err != nil {
		refuse(w, log, err)
		return
	}
	log = log.With(logkey.Node, host, logkey.Group, group)
	if err := h.Tokens.Allow(r, group); err != nil {
		if err.Kind == KindUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="rebootmgr fleetlock"`)
		}
		refuse(w, log, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	switch endpoint {
	case "pre-reboot":
		if err := h.Locks.PreReboot(ctx, host, group); err != nil {
			refuseErr(w, log, err)
			return
		}
		log.Info("pre-reboot granted")
	case "steady-state":
		released, err := h.Locks.SteadyState(ctx, host, group)
		if err != nil {
			refuseErr(w, log, err)
			return
		}
		log.Info("steady-state answered", logkey.Released, released)
	}
	w.WriteHeader(http.StatusOK)
}

// readRequest reads the host's id and its group (the default when it names none) from the
// body: one JSON object of at most MaxBody bytes with client_params.id, a valid node name, and
// client_params.group, a valid group name if given.
func readRequest(w http.ResponseWriter, r *http.Request) (host, group string, _ *Refusal) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return "", "", &Refusal{Kind: KindBadRequest, Value: fmt.Sprintf("the body is over %d bytes", MaxBody)}
		}
		return "", "", &Refusal{Kind: KindBadRequest, Value: "the body could not be read whole"}
	}
	var req request
	if err := json.Unmarshal(data, &req); err != nil {
		return "", "", &Refusal{Kind: KindBadRequest, Value: `the body is not a FleetLock request: want the JSON object {"client_params": {"id": "...", "group": "..."}}`}
	}
	if req.ClientParams == nil || req.ClientParams.ID == "" {
		return "", "", &Refusal{Kind: KindBadRequest, Value: `the body has no client_params.id: want {"client_params": {"id": "...", "group": "..."}}`}
	}
	host, group = req.ClientParams.ID, req.ClientParams.Group
	if group == "" || group == DefaultGroup {
		group = store.DefaultGroup
	}
	if err := store.ValidNode(host); err != nil {
		return "", "", &Refusal{Kind: KindBadRequest, Value: "client_params.id: " + err.Error()}
	}
	if err := store.ValidGroup(group); err != nil {
		return "", "", &Refusal{Kind: KindBadRequest, Value: "client_params.group: " + err.Error()}
	}
	return host, group, nil
}

// refuseErr answers err as refusalOf says, and logs the error itself where the answer leaves it
// out: a refusal of kind error or consul_unavailable says only that something failed.
func refuseErr(w http.ResponseWriter, log *slog.Logger, err error) {
	r := refusalOf(err)
	switch r.Kind {
	case KindError:
		log.Error("could not answer the request", logkey.Err, err)
	case KindConsulUnavailable:
		log.Warn("Consul did not answer, or failed", logkey.Err, err)
	}
	refuse(w, log, r)
}

// refuse answers with the refusal's status and body.
func refuse(w http.ResponseWriter, log *slog.Logger, r *Refusal) {
	r = &Refusal{Kind: r.Kind, Value: clip.Text(r.Value)}
	log.Info("refused", logkey.Kind, r.Kind, logkey.Value, r.Value)
	body, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		body = []byte(`{"kind": "error", "value": "encoding the answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(Status(r.Kind))
	_, _ = w.Write(append(body, '\n'))
}
