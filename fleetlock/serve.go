package fleetlock

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/rebootmgr/rebootmgr/logkey"
)

// The server's bounds: a client that dawdles over its headers or body is cut off, and a
// request's work (a few Consul requests) is bounded.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 2 * time.Minute
	// shutdownTimeout bounds how long requests under way may finish after the server is told
	// to stop.
	shutdownTimeout = 10 * time.Second
)

// Server serves a Handler on a listener, over TLS when CertFile and KeyFile are set.
type Server struct {
	Handler  http.Handler
	CertFile string
	KeyFile  string
	Logger   *slog.Logger
}

// Serve serves on l (and closes it) until ctx ends, then stops taking requests and lets those under way finish
// (for at most 10 seconds). It returns nil after such a shutdown.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    MaxBody,
		ErrorLog:          slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if s.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			_ = l.Close()
			return fmt.Errorf("TLS certificate %s and key %s: %w", s.CertFile, s.KeyFile, err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		l = tls.NewListener(l, srv.TLSConfig)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve FleetLock on %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	s.Logger.Info("shutting down: no new requests, those under way may finish", logkey.Timeout, shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shut down the FleetLock server: %w", err)
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve FleetLock on %s: %w", l.Addr(), err)
	}
	return nil
}
