package graph

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"authql/auth"
)

// extensionCodes maps the domain's codes to errors[].extensions.code, as
// the README's error table gives them.
var extensionCodes = map[auth.Code]string{
	auth.CodeInvalidRequest:       "BAD_USER_INPUT",
	auth.CodeInvalidGrant:         "INVALID_GRANT",
	auth.CodeInvalidScope:         "INVALID_SCOPE",
	auth.CodeUnsupportedGrantType: "BAD_USER_INPUT",
	auth.CodeInvalidClient:        "BAD_USER_INPUT",
	auth.CodeInvalidToken:         "UNAUTHENTICATED",
	auth.CodeUnauthenticated:      "UNAUTHENTICATED",
	auth.CodeForbidden:            "FORBIDDEN",
	auth.CodeRateLimited:          "RATE_LIMITED",
	auth.CodeUnavailable:          "RATE_LIMITED",
	auth.CodeUnauthorizedClient:   "BAD_USER_INPUT",
	auth.CodeInternal:             "INTERNAL_SERVER_ERROR",
}

// presentError turns a resolver's *auth.Error into a GraphQL error with
// extensions.code. Anything else a resolver returned was made an internal
// error by internalErrors, so its cause is logged and never shown. Errors
// gqlgen makes itself (parse, validation, arguments) pass through.
//
// requestID names the request of a context, for the log line and the
// client's extensions.requestId of an internal error.
func presentError(logger *slog.Logger, requestID func(context.Context) string) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gqlErr := graphql.DefaultErrorPresenter(ctx, err)
		ae, ok := auth.AsError(err)
		if !ok {
			return gqlErr
		}
		ext := map[string]any{"code": extensionCodes[ae.Code]}
		msg := ae.Message
		switch {
		case ae.Code == auth.CodeInternal:
			reqID := requestID(ctx)
			logger.ErrorContext(ctx, "internal error", "request_id", reqID,
				"path", gqlErr.Path.String(), "err", ae.Err)
			msg, ext["requestId"] = "internal server error", reqID
		case ae.Field != "":
			ext["field"] = ae.Field
		case ae.RequiredScopes != nil:
			ext["requiredScopes"] = ae.RequiredScopes
		}
		if ae.RetryAfter > 0 {
			ext["retryAfter"] = int(math.Ceil(ae.RetryAfter.Seconds()))
		}
		return &gqlerror.Error{
			Message:    msg,
			Path:       gqlErr.Path,
			Locations:  gqlErr.Locations,
			Extensions: ext,
		}
	}
}

// internalErrors is a field middleware that marks every error one of our
// resolvers returns that is not an *auth.Error as internal, so the
// presenter hides it. Errors of gqlgen's own fields pass.
func internalErrors(ctx context.Context, next graphql.Resolver) (any, error) {
	res, err := next(ctx)
	if fc := graphql.GetFieldContext(ctx); err != nil && (fc == nil || fc.IsResolver) {
		if _, ok := auth.AsError(err); !ok {
			err = &auth.Error{Code: auth.CodeInternal, Message: "internal server error", Err: err}
		}
	}
	return res, err
}

// recoverPanic turns a resolver panic into an internal error, with the
// stack in the log.
func recoverPanic(ctx context.Context, p any) error {
	return &auth.Error{
		Code:    auth.CodeInternal,
		Message: "internal server error",
		Err:     fmt.Errorf("panic: %v\n%s", p, debug.Stack()),
	}
}
