package auth

import (
	"errors"
	"fmt"
	"time"
)

// Code classifies an Error. It is the one error vocabulary of authql: the
// OAuth2 edge maps a Code to an RFC 6749 section 5.2 error code and an HTTP
// status, the GraphQL edge to errors[].extensions.code. The string values are
// the OAuth2 wire codes where one exists.
type Code string

// The codes. The README's "Error codes" table says how each one reaches a
// client.
const (
	// CodeInvalidRequest: a parameter is missing, repeated or malformed, or
	// signup and password rules are broken (RFC 6749 section 5.2).
	CodeInvalidRequest Code = "invalid_request"
	// CodeInvalidGrant: wrong credentials, a disabled user, or a bad, expired
	// or reused refresh token (RFC 6749 section 5.2).
	CodeInvalidGrant Code = "invalid_grant"
	// CodeInvalidScope: a scope is malformed or not granted (RFC 6749
	// section 5.2).
	CodeInvalidScope Code = "invalid_scope"
	// CodeUnsupportedGrantType: grant_type is not one this server issues
	// tokens for (RFC 6749 section 5.2).
	CodeUnsupportedGrantType Code = "unsupported_grant_type"
	// CodeInvalidClient: client authentication failed (RFC 6749 section 5.2).
	CodeInvalidClient Code = "invalid_client"
	// CodeUnauthorizedClient: the client may not use this grant type, or
	// revoke a token issued to another client (RFC 6749 section 5.2).
	CodeUnauthorizedClient Code = "unauthorized_client"
	// CodeInvalidToken: a bearer token is expired, tampered, revoked or
	// belongs to a user that no longer may use it (RFC 6750 section 3.1).
	CodeInvalidToken Code = "invalid_token"
	// CodeUnauthenticated: an operation needs a user and none was given.
	CodeUnauthenticated Code = "unauthenticated"
	// CodeForbidden: the user lacks a scope or a permission.
	CodeForbidden Code = "forbidden"
	// CodeRateLimited: too many failed logins for a username or from an
	// address (RFC 6749 section 4.3.2); retry after RetryAfter.
	CodeRateLimited Code = "rate_limited"
	// CodeUnavailable: the server is overloaded; retry after RetryAfter
	// (RFC 6749 section 5.2 temporarily_unavailable).
	CodeUnavailable Code = "temporarily_unavailable"
	// CodeInternal: anything unexpected. Its cause is logged, never shown.
	CodeInternal Code = "server_error"
)

// Error is a failure that is safe to show to a client: Message never carries
// a secret or an internal cause. Err, when set, is the cause for the logs.
type Error struct {
	Code    Code
	Message string
	// Field names the input field at fault, for forms (signup, passwords).
	Field string
	// RequiredScopes lists the scopes a CodeForbidden caller is missing.
	RequiredScopes []string
	// RetryAfter tells a throttled or overloaded client when to come back.
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return string(e.Code) + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with code and a client-safe message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// fieldError reports broken input rules on a named form field.
func fieldError(field, format string, args ...any) *Error {
	e := Errorf(CodeInvalidRequest, format, args...)
	e.Field = field
	return e
}

// AsError returns what a client may be told of err: err itself when it is
// an *Error, CodeUnavailable with RetryAfter when a Store was too busy
// (ErrBusy), and false for anything else, a fault that the edges report as
// CodeInternal. The edges call it on every error they answer.
func AsError(err error) (*Error, bool) {
	if e, ok := errors.AsType[*Error](err); ok {
		return e, true
	}
	if errors.Is(err, ErrBusy) {
		return &Error{
			Code:       CodeUnavailable,
			Message:    "the server is busy; retry shortly",
			RetryAfter: time.Second,
			Err:        err,
		}, true
	}
	return nil, false
}

// ErrorCode returns the Code of err as AsError sees it, or CodeInternal.
func ErrorCode(err error) Code {
	if e, ok := AsError(err); ok {
		return e.Code
	}
	return CodeInternal
}

// errBadCredentials is the one answer to a wrong username, a wrong password
// and a disabled user, so that none of them reveals whether an account exists.
func errBadCredentials() *Error {
	return Errorf(CodeInvalidGrant, "invalid username or password")
}

// errBadRefreshToken is the one answer to any refresh token that cannot be
// used: unknown, expired, revoked or reused.
func errBadRefreshToken() *Error {
	return Errorf(CodeInvalidGrant, "invalid, expired or revoked refresh token")
}
