package main

import (
	"errors"

	"github.com/rebootmgr/rebootmgr/store"
)

// The ACL token a command sends, and where it came from: a refusal names it, since a command
// typed on a node picks up its daemon's token from the configuration file unless the
// environment gives one. The token is one setting in two forms: a token given by the
// environment, in either form, wins over the file's, in either form; of two in one place the
// file form wins, as the Consul client has it.

const (
	tokenName     = "CONSUL_HTTP_TOKEN"
	tokenFileName = "CONSUL_HTTP_TOKEN_FILE"
)

// tokenInEnv says whether the environment gives a token.
func (e env) tokenInEnv() bool {
	for _, name := range []string{tokenName, tokenFileName} {
		if v, ok := e.lookup(name); ok && v != "" {
			return true
		}
	}
	return false
}

// tokenSource says which token the Consul client sends and where it came from, never the
// token itself.
func (e env) tokenSource() string {
	fromFile := func(name string) (string, bool) {
		if _, inEnv := e.lookup(name); inEnv || e.tokenInEnv() {
			return "", false
		}
		v := e.file[name]
		return v, v != ""
	}
	if v, ok := e.lookup(tokenFileName); ok && v != "" {
		return tokenFileName + "=" + v + " from the environment"
	}
	if v, ok := fromFile(tokenFileName); ok {
		return tokenFileName + "=" + v + " in " + e.path
	}
	if v, ok := e.lookup(tokenName); ok && v != "" {
		return tokenName + " from the environment"
	}
	if _, ok := fromFile(tokenName); ok {
		return tokenName + " in " + e.path
	}
	return "none (" + tokenName + " and " + tokenFileName + " unset): anonymous, or the agent's default token"
}

// aclRefused says whether err is Consul refusing the token: a 403 (a permission it lacks, a
// token it does not know) or results it hid from it.
func aclRefused(err error) bool {
	return errors.Is(err, store.ErrDenied) || errors.Is(err, store.ErrFiltered)
}
