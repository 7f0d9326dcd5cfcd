package auth_test

import (
	"strings"
	"testing"

	"authql/auth"
)

func TestParseScope(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    string
		wantErr bool
	}{
		{in: "", want: ""},
		{in: "a", want: "a"},
		{in: "users:read users:write", want: "users:read users:write"},
		{in: "b a b", want: "b a"},
		{in: "!#[]~", want: "!#[]~"},
		{in: " a", wantErr: true},
		{in: "a ", wantErr: true},
		{in: "a  b", wantErr: true},
		{in: "a\tb", wantErr: true},
		{in: `a"b`, wantErr: true},
		{in: `a\b`, wantErr: true},
		{in: "caf\u00e9", wantErr: true},
		{in: strings.Repeat("a ", 600) + "a", wantErr: true},
	} {
		got, err := auth.ParseScope(tc.in)
		if tc.wantErr {
			if err == nil {
				t.Errorf("ParseScope(%q) = %q; want an error", tc.in, got)
			} else {
				wantCode(t, err, auth.CodeInvalidScope)
			}
			continue
		}
		if err != nil || auth.FormatScope(got) != tc.want {
			t.Errorf("ParseScope(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestValidateUsername(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"abc", true},
		{"alice.smith@example", true},
		{"Zoë", true},
		{strings.Repeat("x", 64), true},
		{"ab", false},
		{strings.Repeat("x", 65), false},
		{"al ice", false},
		{"al\tice", false},
		{"al\x00ice", false},
		{"al\u200bice", false},
		{"\xff\xfe\xfd", false},
	} {
		err := auth.ValidateUsername(tc.name)
		if tc.ok && err != nil {
			t.Errorf("ValidateUsername(%q) = %v; want nil", tc.name, err)
		}
		if !tc.ok {
			if err == nil {
				t.Errorf("ValidateUsername(%q) = nil; want an error", tc.name)
				continue
			}
			if ae := wantCode(t, err, auth.CodeInvalidRequest); ae.Field != "username" {
				t.Errorf("field = %q; want username", ae.Field)
			}
		}
	}
}

func TestValidatePassword(t *testing.T) {
	for _, tc := range []struct {
		password string
		wantMsg  string // "" for valid
	}{
		{"tr0ub4dor&3x", ""},
		{strings.Repeat("x", 72), ""},
		{strings.Repeat("é", 36), ""}, // 72 bytes
		{"1234567", "at least 8 characters"},
		{strings.Repeat("x", 73), "at most 72 bytes"},
		{strings.Repeat("é", 37), "at most 72 bytes"},
		{"12345678", "most common passwords"},
		{"password", "most common passwords"},
		{"PassWord", "most common passwords"},
		{"iloveyou", "most common passwords"},
		{"qwertyuiop", "most common passwords"},
	} {
		err := auth.ValidatePassword("password", tc.password)
		if tc.wantMsg == "" {
			if err != nil {
				t.Errorf("ValidatePassword(%d bytes) = %v", len(tc.password), err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantMsg) {
			t.Errorf("ValidatePassword(%d bytes) = %v; want %q", len(tc.password), err, tc.wantMsg)
		}
	}
}
