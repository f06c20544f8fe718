package main

import "testing"

func TestWithDefaultPort(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"10.0.0.1", "10.0.0.1:8500"},
		{"consul.example.com", "consul.example.com:8500"},
		{"10.0.0.1:8501", "10.0.0.1:8501"},
		{"http://consul.example.com", "http://consul.example.com:8500"},
		{"https://consul.example.com", "https://consul.example.com"},
		{"https://consul.example.com:8501", "https://consul.example.com:8501"},
		{"[::1]", "[::1]:8500"},
		{"[::1]:8500", "[::1]:8500"},
		{"unix:///run/consul/http.sock", "unix:///run/consul/http.sock"},
		{"", ""},
	} {
		if got := withDefaultPort(tc.in); got != tc.want {
			t.Errorf("withDefaultPort(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
