package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// queryLimits refuses operations nested deeper than maxDepth or with more
// than maxAliases aliased fields, before anything executes. Introspection
// (__schema, __type) is not counted: GraphiQL's own query is deep, and
// costs the server little. Fragments are measured once each, so a
// "fragment bomb" cannot make the walk itself expensive.
type queryLimits struct {
	maxDepth, maxAliases int
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = queryLimits{}

func (queryLimits) ExtensionName() string                          { return "QueryLimits" }
func (queryLimits) Validate(schema graphql.ExecutableSchema) error { return nil }

func (l queryLimits) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	m := &measurer{fragments: oc.Doc.Fragments, memo: map[string]measure{}}
	got := m.selections(oc.Operation.SelectionSet)
	switch {
	case got.depth > l.maxDepth:
		err := gqlerror.Errorf("the operation is nested %d levels deep; the limit is %d", got.depth, l.maxDepth)
		errcode.Set(err, "DEPTH_LIMIT_EXCEEDED")
		return err
	case got.aliases > l.maxAliases:
		err := gqlerror.Errorf("the operation has more than %d aliased fields", l.maxAliases)
		errcode.Set(err, "ALIAS_LIMIT_EXCEEDED")
		return err
	}
	return nil
}

// measure is the depth and the number of aliased fields of a selection set.
type measure struct {
	depth, aliases int
}

type measurer struct {
	fragments ast.FragmentDefinitionList
	memo      map[string]measure
}

// saturate keeps alias counts of repeated fragment spreads from overflowing.
const saturate = 1 << 20

func (m *measurer) selections(set ast.SelectionSet) measure {
	var out measure
	add := func(x measure) {
		out.depth = max(out.depth, x.depth)
		out.aliases = min(out.aliases+x.aliases, saturate)
	}
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if s.Name == "__schema" || s.Name == "__type" {
				continue
			}
			child := m.selections(s.SelectionSet)
			child.depth++
			if s.Alias != s.Name {
				child.aliases++
			}
			add(child)
		case *ast.InlineFragment:
			add(m.selections(s.SelectionSet))
		case *ast.FragmentSpread:
			add(m.fragment(s.Name))
		}
	}
	return out
}

func (m *measurer) fragment(name string) measure {
	if got, ok := m.memo[name]; ok {
		return got
	}
	m.memo[name] = measure{} // validation has refused cycles; this ends any
	def := m.fragments.ForName(name)
	if def == nil {
		return measure{}
	}
	got := m.selections(def.SelectionSet)
	m.memo[name] = got
	return got
}

// refuseBatches answers a POST whose body is a JSON array, a batch of
// operations, with 400: one operation per request, so that limits and login
// throttling apply to each.
func refuseBatches(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Body == nil {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			writeRequestError(w, http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE", "the request body is too large")
			return
		}
		if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '[' {
			writeRequestError(w, http.StatusBadRequest, "BATCH_NOT_SUPPORTED",
				"batched operations are not supported; send one operation per request")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// writeRequestError answers a request that never reached GraphQL execution.
func writeRequestError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]any{{"message": msg, "extensions": map[string]string{"code": code}}},
	})
}
