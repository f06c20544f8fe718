package fleetlock

import (
	"bufio"
	"crypto/subtle"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/rebootmgr/rebootmgr/store"
)

// AnyGroup names, in a token file, the token of every group the file does not name.
const AnyGroup = "*"

// Tokens are the bearer tokens of groups (group -> token, AnyGroup for the others). With no
// token at all, every request is served; with some, a request for a group needs that group's
// token (or AnyGroup's), and a group that has none is not served.
type Tokens map[string]string

// ReadTokens reads a token file: one GROUP=TOKEN a line (GROUP a group's name, or * for every
// group not named), blank lines and # comments skipped. A group named twice, an empty token or
// a line that is not GROUP=TOKEN is an error naming the line.
func ReadTokens(r io.Reader, name string) (Tokens, error) {
	out := Tokens{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		group, token, ok := strings.Cut(line, "=")
		group, token = strings.TrimSpace(group), strings.TrimSpace(token)
		if !ok || token == "" {
			return nil, fmt.Errorf("%s:%d: want GROUP=TOKEN (GROUP a group's name, or * for every other group)", name, n)
		}
		if group != AnyGroup {
			if err := store.ValidGroup(group); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", name, n, err)
			}
		}
		if _, dup := out[group]; dup {
			return nil, fmt.Errorf("%s:%d: group %s is given a token twice", name, n, group)
		}
		out[group] = token
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read token file %s: %w", name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("token file %s names no token: without one every request would be served", name)
	}
	return out, nil
}

// LoadTokens reads the token file at path (see ReadTokens).
func LoadTokens(path string) (Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	return ReadTokens(f, path)
}

// Allow says whether r may act for group: nil, or the refusal. The token comes as
// "Authorization: Bearer TOKEN", or as the password of Basic authentication (what an HTTP
// client sends for a base URL with user information, https://group:TOKEN@host/).
func (t Tokens) Allow(r *http.Request, group string) *Refusal {
	if len(t) == 0 {
		return nil
	}
	want, ok := t[group]
	if !ok {
		want, ok = t[AnyGroup]
	}
	if !ok {
		return &Refusal{Kind: KindForbidden, Value: "group " + group + " is not served here: the token file gives it no token"}
	}
	got, ok := presented(r)
	if !ok {
		return &Refusal{Kind: KindUnauthorized, Value: "group " + group + " needs a token: Authorization: Bearer TOKEN"}
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return &Refusal{Kind: KindForbidden, Value: "wrong token for group " + group}
	}
	return nil
}

// presented is the token a request carries, if any.
func presented(r *http.Request) (string, bool) {
	if _, password, ok := r.BasicAuth(); ok && password != "" {
		return password, true
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", false
	}
	return strings.TrimSpace(token), true
}
