package graph

import (
	"context"
	"fmt"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
)

// Bounds of a document, before validation, beyond the operation's own
// complexity limit.
const (
	// introspectionSelections is room for an introspection query, whose
	// fields gqlgen's complexity leaves out: GraphiQL's, with every option
	// on, holds 240 selections counted through its fragments.
	introspectionSelections = 500
	// tokensPerSelection bounds the lexical tokens of a document per
	// selection it may hold: a name, an alias, a few arguments. GraphiQL's
	// introspection query has 184 tokens for its 240 selections.
	tokensPerSelection = 5
	// maxComparisons bounds the pairs of fields of one response name, and
	// of fragment spreads, that validation compares side by side, weighted
	// by what it reads of each pair (selectionCounter): documents at the
	// limit validated in at most 1 ms of CPU on 2 shared cores (aliases of
	// one field with different arguments, the costliest shape), 2.5 ms
	// when the cores were busy.
	maxComparisons = 2000
)

// Codes of the errors documentLimits returns; complexityLimitExceeded is
// gqlgen's own, which its complexity extension returns after validation.
const (
	complexityLimitExceeded = "COMPLEXITY_LIMIT_EXCEEDED"
	selectionLimitExceeded  = "SELECTION_LIMIT_EXCEEDED"
)

// documentLimits refuses, before gqlparser validates it, a document whose
// selections (fields, fragment spreads, inline fragments, counted through
// the fragments they spread) are more than the limits could ever let run.
// Validation is quadratic in the fields of one response name
// (OverlappingFieldsCanBeMerged compares every pair: 121 KB of
// { __typename __typename … } took 13 s), and whatever follows every
// fragment spread anew is exponential in fragments that spread fragments
// twice: gqlgen's complexity limit, after validation (900 bytes took
// 0.4 s), and gqlparser's MaxIntrospectionDepth rule under __schema.
//
// Counting here is linear: one parse, then one walk that stops at the
// first limit passed. It refuses, with COMPLEXITY_LIMIT_EXCEEDED, an
// operation with more than maxFields fields outside __schema, the count
// gqlgen's complexity limit makes (each field 1, each fragment spread
// counted again); and, with SELECTION_LIMIT_EXCEEDED, a document with more
// than maxSelections selections in all its operations and fragments, or
// whose validation would make more than maxComparisons comparisons. The
// parser stops at maxTokens tokens (GRAPHQL_PARSE_FAILED), which bounds
// what the counts leave out: arguments, directives, variables.
//
// Queries in cache are skipped: they passed these limits, which do not
// change, before they were validated and cached. One run again with
// another operationName has the fields of that operation counted by
// gqlgen's complexity limit only, which the limits on the whole document
// keep linear.
type documentLimits struct {
	maxFields, maxSelections, maxComparisons, maxTokens int
	cache                                               *queryCache
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = documentLimits{}

// newDocumentLimits returns the limits for operations of at most
// maxComplexity fields: the document may hold twice as many selections,
// a fragment spread or an inline fragment for every field, and room for
// an introspection query beside them.
func newDocumentLimits(maxComplexity int, cache *queryCache) documentLimits {
	maxSelections := 2*maxComplexity + introspectionSelections
	return documentLimits{
		maxFields:      maxComplexity,
		maxSelections:  maxSelections,
		maxComparisons: maxComparisons,
		maxTokens:      tokensPerSelection * maxSelections,
		cache:          cache,
	}
}

func (documentLimits) ExtensionName() string                          { return "DocumentLimits" }
func (documentLimits) Validate(schema graphql.ExecutableSchema) error { return nil }

func (l documentLimits) MutateOperationParameters(ctx context.Context, p *graphql.RawParams) *gqlerror.Error {
	if l.cache != nil && l.cache.contains(p.Query) {
		return nil
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: p.Query}, l.maxTokens)
	if err != nil {
		gqlErr, ok := err.(*gqlerror.Error)
		if !ok {
			gqlErr = gqlerror.Errorf("%s", err)
		}
		errcode.Set(gqlErr, errcode.ParseFailed) // as gqlgen's own parse would
		return gqlErr
	}
	got := countSelections(doc, p.OperationName, l.maxFields, l.maxSelections)
	switch {
	case got.fields > l.maxFields:
		err := gqlerror.Errorf("the operation has more than %d fields", l.maxFields)
		errcode.Set(err, complexityLimitExceeded)
		return err
	case got.selections > l.maxSelections:
		err := gqlerror.Errorf("the document has more than %d selections (fields, fragment spreads and inline fragments, counted through fragments)", l.maxSelections)
		errcode.Set(err, selectionLimitExceeded)
		return err
	case got.comparisons > l.maxComparisons:
		what := "fragment spreads"
		if got.mostRepeated != "" {
			what = fmt.Sprintf("field %q", got.mostRepeated)
		}
		err := gqlerror.Errorf("the document repeats selections side by side too often (%s, %d times in one selection set): validating it would take %d comparisons; the limit is %d",
			what, got.repeats, got.comparisons, l.maxComparisons)
		errcode.Set(err, selectionLimitExceeded)
		return err
	}
	return nil
}

// selectionCount is what countSelections found in a document.
type selectionCount struct {
	// fields of the chosen operation outside __schema, through fragments:
	// its complexity, as gqlgen's complexity limit counts it.
	fields int
	// selections of every operation and unused fragment, through fragments.
	selections int
	// comparisons estimates the work of validation's
	// OverlappingFieldsCanBeMerged rule; see selectionCounter.
	comparisons int
	// mostRepeated is the response name of the field repeated most in one
	// merged selection set, repeats times, or "" for fragment spreads.
	mostRepeated string
	repeats      int
}

// countSelections counts the selections of doc, its operation named
// operationName (as gqlgen chooses it) first. It stops once more than
// maxFields or maxSelections are counted, so its work is linear in the
// document and bounded by maxSelections, however fragments spread one
// another.
func countSelections(doc *ast.QueryDocument, operationName string, maxFields, maxSelections int) selectionCount {
	c := &selectionCounter{
		fragments:     make(map[string]*ast.FragmentDefinition, len(doc.Fragments)),
		reached:       make(map[*ast.FragmentDefinition]bool, len(doc.Fragments)),
		expanding:     map[string]bool{},
		maxFields:     maxFields,
		maxSelections: maxSelections,
	}
	for _, f := range doc.Fragments {
		if _, dup := c.fragments[f.Name]; !dup { // spreads name the first
			c.fragments[f.Name] = f
		}
	}
	chosen := doc.Operations.ForName(operationName)
	if chosen != nil {
		c.counting = true
		c.selectionSet(&mergedSet{}, chosen.SelectionSet)
		c.counting = false
	}
	for _, op := range doc.Operations {
		if op != chosen {
			c.selectionSet(&mergedSet{}, op.SelectionSet)
		}
	}
	// Validation checks every fragment, unused or a duplicate too.
	for _, f := range doc.Fragments {
		if !c.reached[f] {
			c.reached[f] = true
			c.expanding[f.Name] = true
			c.selectionSet(&mergedSet{}, f.SelectionSet)
			delete(c.expanding, f.Name)
		}
	}
	return c.selectionCount
}

// selectionCounter walks a document as validation and execution see it:
// each fragment spread replaced by its fragment's selections, each inline
// fragment by its own, and the fields of one response name in a selection
// set merged into one, whose selection sets merge in turn.
//
// Validation compares every two fields of one response name in a merged
// selection set, reading both their selection sets and both their argument
// lists, and every two fragment spreads in it, reading both fragments. So
// a pair of fields with s1 and s2 selections directly below them and a1
// and a2 arguments counts 1+s1+s2+a1*a2 comparisons, and a pair of
// fragment spreads adding f1 and f2 selections counts 1+f1+f2.
type selectionCounter struct {
	selectionCount
	fragments map[string]*ast.FragmentDefinition
	// reached are the fragments spread so far; expanding, those being
	// spread now, whose spreads inside themselves are cycles, which
	// validation refuses and the walk does not follow.
	reached                  map[*ast.FragmentDefinition]bool
	expanding                map[string]bool
	counting                 bool // fields count towards complexity
	maxFields, maxSelections int
}

// mergedSet is the selections merged into one selection set so far.
type mergedSet struct {
	fields map[string]*mergedField
	// spreads and their selections, counted at the level of the set.
	spreads, spreadSelections int
}

// mergedField is the fields of one response name in a mergedSet.
type mergedField struct {
	n          int // fields so far
	selections int // directly below them, summed
	arguments  int // summed
	set        *mergedSet
}

func (c *selectionCounter) done() bool {
	return c.fields > c.maxFields || c.selections > c.maxSelections
}

// selectionSet merges set into m and returns how many selections it added
// at m's level.
func (c *selectionCounter) selectionSet(m *mergedSet, set ast.SelectionSet) int {
	added := 0
	for _, sel := range set {
		if c.done() {
			break
		}
		c.selections++
		added++
		switch s := sel.(type) {
		case *ast.Field:
			c.field(m, s)
		case *ast.InlineFragment:
			added += c.selectionSet(m, s.SelectionSet)
		case *ast.FragmentSpread:
			n := c.spread(m, s)
			c.comparisons += m.spreads*(1+n) + m.spreadSelections
			m.spreads++
			m.spreadSelections += n
			c.repeated("", m.spreads)
			added += n
		}
	}
	return added
}

func (c *selectionCounter) field(m *mergedSet, f *ast.Field) {
	name := f.Alias
	if name == "" {
		name = f.Name
	}
	if m.fields == nil {
		m.fields = map[string]*mergedField{}
	}
	mf := m.fields[name]
	if mf == nil {
		mf = &mergedField{}
		m.fields[name] = mf
	}
	counting := c.counting
	if f.Name == "__schema" { // gqlgen's complexity leaves out its whole tree
		c.counting = false
	} else if counting {
		c.fields++
	}
	below := 0
	if len(f.SelectionSet) > 0 {
		if mf.set == nil {
			mf.set = &mergedSet{}
		}
		below = c.selectionSet(mf.set, f.SelectionSet)
	}
	c.counting = counting
	args := len(f.Arguments)
	c.comparisons += mf.n*(1+below) + mf.selections + args*mf.arguments
	mf.n++
	mf.selections += below
	mf.arguments += args
	c.repeated(name, mf.n)
}

// spread merges the selections of the fragment s spreads into m, unless it
// is unknown or spreads itself, and returns how many it added at m's level.
func (c *selectionCounter) spread(m *mergedSet, s *ast.FragmentSpread) int {
	f := c.fragments[s.Name]
	if f == nil || c.expanding[s.Name] {
		return 0
	}
	c.reached[f] = true
	c.expanding[s.Name] = true
	n := c.selectionSet(m, f.SelectionSet)
	delete(c.expanding, s.Name)
	return n
}

func (c *selectionCounter) repeated(name string, n int) {
	if n > c.repeats {
		c.mostRepeated, c.repeats = name, n
	}
}
