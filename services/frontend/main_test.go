package main

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// The frontend refuses to start without a way to tell callers apart
// unless told to trust everyone, and keeps the development issuer on
// loopback.
func TestAuthFlagsCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		f    authFlags
		addr string
		want string // "" means accepted
	}{
		{"nothing", authFlags{}, ":3000", "no identity provider"},
		{"insecure", authFlags{insecure: true}, ":3000", ""},
		{"jwks", authFlags{jwksURL: "https://id.example.com/jwks.json", issuer: "https://id.example.com/"}, ":3000", ""},
		{"jwks without issuer", authFlags{jwksURL: "https://id.example.com/jwks.json"}, ":3000", "-auth-issuer"},
		{"public keys", authFlags{publicKeys: "a.pem", issuer: "x"}, ":3000", ""},
		{"dev issuer on loopback", authFlags{devKey: "dev.pem"}, "127.0.0.1:3000", ""},
		{"dev issuer on every interface", authFlags{devKey: "dev.pem"}, ":3000", "loopback"},
		{"dev issuer on a public address", authFlags{devKey: "dev.pem"}, "192.0.2.1:3000", "loopback"},
		{"insecure and keys", authFlags{insecure: true, publicKeys: "a.pem", issuer: "x"}, ":3000", "choose one"},
	}
	for _, tt := range tests {
		err := tt.f.check(tt.addr)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	if err := (&authFlags{}).check(":3000"); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("no identity: %v", err)
	}
}

func TestParsePrefixes(t *testing.T) {
	t.Parallel()
	got, err := parsePrefixes(" 10.0.0.0/8, 192.0.2.7 ,fd00::/8")
	if err != nil || len(got) != 3 || got[1].String() != "192.0.2.7/32" {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := parsePrefixes("nonsense"); err == nil {
		t.Fatal("accepted nonsense")
	}
}

// -modes is the list a ticket's mode is checked against and the page
// offers: an empty flag is no list (any mode), never a list of "".
func TestModesFlag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, flag string
		want       []string
	}{
		{"default: the default modes", "", []string{"1v1", "2v2", "5v5", "ffa"}},
		{"listed", "-modes=1v1,ffa", []string{"1v1", "ffa"}},
		{"blanks and repeats", "-modes= 1v1 , 2v2,,1v1,", []string{"1v1", "2v2"}},
		{"empty: any mode", "-modes=", nil},
		{"only commas: any mode", "-modes= , ", nil},
	}
	for _, tt := range tests {
		args := []string{"-auth-insecure"}
		if tt.flag != "" {
			args = append(args, tt.flag)
		}
		c, err := parseConfig(args)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if !slices.Equal(c.tickets.Modes, tt.want) {
			t.Errorf("%s: modes %q, want %q", tt.name, c.tickets.Modes, tt.want)
		}
	}
}
