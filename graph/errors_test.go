package graph

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"authql/auth"
)

func TestPresentError(t *testing.T) {
	var logs bytes.Buffer
	present := presentError(slog.New(slog.NewTextHandler(&logs, nil)), func(context.Context) string { return "req-123" })
	ctx := context.Background()
	forbidden := auth.RequireScopes(&auth.Identity{Scopes: []string{"a"}}, "a", "users:write")
	field := auth.ValidatePassword("newPassword", "short")
	busy := auth.ErrBusy
	secretCause := errors.New("sqlite: table users has no column password_hash near 'secret'")

	for _, tc := range []struct {
		name     string
		err      error
		wantCode string
		wantMsg  string
		wantExt  map[string]any
	}{
		{"forbidden", forbidden, "FORBIDDEN", "users:write", map[string]any{"requiredScopes": []string{"users:write"}}},
		{"field", field, "BAD_USER_INPUT", "at least 8", map[string]any{"field": "newPassword"}},
		{"busy", busy, "RATE_LIMITED", "busy", map[string]any{"retryAfter": 1}},
		{"panic", recoverPanic(ctx, "boom"), "INTERNAL_SERVER_ERROR", "internal server error", map[string]any{"requestId": "req-123"}},
		{"unknown resolver error", mustInternal(t, secretCause), "INTERNAL_SERVER_ERROR", "internal server error", map[string]any{"requestId": "req-123"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := present(ctx, tc.err)
			if got.Extensions["code"] != tc.wantCode || !strings.Contains(got.Message, tc.wantMsg) {
				t.Errorf("presented %q %v; want code %s and a message with %q", got.Message, got.Extensions, tc.wantCode, tc.wantMsg)
			}
			for k, want := range tc.wantExt {
				if g := got.Extensions[k]; !equalJSONish(g, want) {
					t.Errorf("extensions.%s = %v; want %v", k, g, want)
				}
			}
			if strings.Contains(got.Message, "sqlite") || strings.Contains(got.Message, "boom") {
				t.Errorf("message leaks the cause: %q", got.Message)
			}
		})
	}
	if !strings.Contains(logs.String(), "boom") || !strings.Contains(logs.String(), "request_id=req-123") {
		t.Errorf("the panic is not logged with its request id:\n%s", logs.String())
	}
}

// mustInternal runs err through the field middleware as a resolver's error.
func mustInternal(t *testing.T, err error) error {
	t.Helper()
	_, got := internalErrors(context.Background(), func(context.Context) (any, error) { return nil, err })
	if auth.ErrorCode(got) != auth.CodeInternal {
		t.Fatalf("internalErrors kept %v", got)
	}
	return got
}

func equalJSONish(a, b any) bool {
	switch b := b.(type) {
	case []string:
		a, ok := a.([]string)
		return ok && strings.Join(a, " ") == strings.Join(b, " ")
	default:
		return a == b
	}
}
