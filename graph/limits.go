package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// The limits refuse a request before it executes: a request error, which
// the GraphQL-over-HTTP specification answers with 4xx and no data under
// application/graphql-response+json (section 6.4.2), like a validation
// error. gqlgen answers codes of KindProtocol so (422, which overHTTP makes
// 200 under application/json); unregistered codes it answers with 200 and
// "data": null.
func init() {
	for _, code := range []string{
		"INTROSPECTION_DISABLED", "DEPTH_LIMIT_EXCEEDED", "ALIAS_LIMIT_EXCEEDED",
		complexityLimitExceeded, selectionLimitExceeded,
	} {
		errcode.RegisterErrorType(code, errcode.KindProtocol)
	}
}

// queryLimits refuses, before anything executes, operations nested deeper
// than maxDepth, with more than maxAliases aliased fields, or, when
// introspection is off, asking for __schema or __type. Introspection counts
// like any other field, because its types nest without end
// (types { fields { type { fields … } } }) and each list level multiplies
// the work; only the ofType chain, a single object per level that ends
// within a few levels, adds no depth, so GraphiQL's own introspection query
// (depth 6) passes. Fragments are measured once each, so a "fragment bomb"
// cannot make the walk itself expensive.
type queryLimits struct {
	maxDepth, maxAliases int
	introspection        bool
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
	case got.introspects && !l.introspection:
		err := gqlerror.Errorf("introspection is disabled on this server")
		errcode.Set(err, "INTROSPECTION_DISABLED")
		return err
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

// measure is the depth and the number of aliased fields of a selection set,
// and whether it asks for introspection.
type measure struct {
	depth, aliases int
	introspects    bool
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
		out.introspects = out.introspects || x.introspects
	}
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			child := m.selections(s.SelectionSet)
			if s.Name != "ofType" {
				child.depth++
			}
			if s.Alias != s.Name {
				child.aliases++
			}
			if s.Name == "__schema" || s.Name == "__type" {
				child.introspects = true
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
