package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
	"github.com/vektah/gqlparser/v2/validator/rules"

	"authql/graph/generated"
)

// defaultOptions are the server's default limits (config.go).
var defaultOptions = Options{Introspection: true, MaxDepth: 8, MaxComplexity: 300, MaxAliases: 30}

// observedHandler returns NewHandler's handler for o, and the number of
// documents gqlparser has validated through it.
func observedHandler(o Options) (http.Handler, *atomic.Int64) {
	srv := newServer(nil, slog.New(slog.DiscardHandler), o)
	validated := new(atomic.Int64)
	srv.SetValidationRulesFn(func() *rules.Rules {
		validated.Add(1)
		return rules.NewDefaultRules() // what gqlgen uses without the hook
	})
	return overHTTP(srv), validated
}

// answer is a /query response.
type answer struct {
	status int
	body   struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Message    string         `json:"message"`
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	hasData bool
}

func (a answer) code() string {
	if len(a.body.Errors) == 0 {
		return ""
	}
	code, _ := a.body.Errors[0].Extensions["code"].(string)
	return code
}

// send posts query, named operationName, to h with Accept: accept.
func send(t testing.TB, h http.Handler, accept, query, operationName string) answer {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"query": query, "operationName": operationName})
	req := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", accept)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	a := answer{status: rec.Code}
	if err := json.Unmarshal(rec.Body.Bytes(), &a.body); err != nil {
		t.Fatalf("%d %.200s: %v", rec.Code, rec.Body, err)
	}
	var raw map[string]json.RawMessage
	json.Unmarshal(rec.Body.Bytes(), &raw)
	_, a.hasData = raw["data"]
	return a
}

// repeat returns n times f(i), for i from 0.
func repeat(n int, f func(i int) string) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(f(i))
	}
	return b.String()
}

// fragmentChain is a document of levels fragments, each spreading the
// next twice: 2^levels spreads of the last, __typename.
func fragmentChain(levels int) string {
	return "{ ...C0 } " + repeat(levels, func(i int) string {
		return fmt.Sprintf("fragment C%d on Query { ...C%d ...C%d } ", i, i+1, i+1)
	}) + fmt.Sprintf("fragment C%d on Query { __typename }", levels)
}

// introspectionChain is fragmentChain under __schema, where gqlparser's
// MaxIntrospectionDepth rule follows every spread anew.
func introspectionChain(levels int) string {
	return "{ __schema { types { ...C0 } } } " + repeat(levels, func(i int) string {
		return fmt.Sprintf("fragment C%d on __Type { ...C%d ...C%d } ", i, i+1, i+1)
	}) + fmt.Sprintf("fragment C%d on __Type { name }", levels)
}

// attack is a document of a shape that costs validation more than linear
// time (gqlparser's OverlappingFieldsCanBeMerged rule is quadratic in the
// fields of one response name; its MaxIntrospectionDepth rule, and gqlgen's
// complexity limit after validation, follow every fragment spread anew),
// or that is large in what the selection counts leave out.
type attack struct {
	name, query, operationName string
	code                       string // of the refusal
}

// attacks are the shapes of document that documentLimits refuses, each of
// a size that keeps the test short even without the fix: validating them
// took from 3 ms (many variables) to 1.4 s (one field repeated).
func attacks() []attack {
	return []attack{
		{name: "one field repeated", query: "{ " + strings.Repeat("__typename ", 2500) + "}", code: complexityLimitExceeded},
		{name: "one field repeated within the complexity limit", query: "{ " + strings.Repeat("__typename ", 250) + "}", code: selectionLimitExceeded},
		{name: "repeated in a nested selection", query: `{ __type(name: "Query") { ` + strings.Repeat("name ", 2500) + "} }", code: complexityLimitExceeded},
		{name: "fields with selections repeated", query: "{ " + strings.Repeat(`__type(name: "Query") { name } `, 140) + "}", code: selectionLimitExceeded},
		{name: "under __schema", query: "{ __schema { " + strings.Repeat("description ", 1000) + "} }", code: selectionLimitExceeded},
		{name: "fragment spread many times", query: "{ " + strings.Repeat("...F ", 1000) + "} fragment F on Query { __typename }", code: complexityLimitExceeded},
		{name: "fragments spreading fragments", query: fragmentChain(20), code: complexityLimitExceeded},
		{name: "fragments spreading fragments under __schema", query: introspectionChain(20), code: selectionLimitExceeded},
		{name: "inline fragment repeated", query: "{ " + strings.Repeat("... on Query { __typename } ", 400) + "}", code: complexityLimitExceeded},
		{name: "aliases with different arguments", query: "{ " + repeat(100, func(i int) string {
			return fmt.Sprintf(`a: __type(name: "T%d") { name } `, i)
		}) + "}", code: selectionLimitExceeded},
		{name: "distinct fragments side by side", query: "{ " + repeat(200, func(i int) string {
			return fmt.Sprintf("...F%d ", i)
		}) + "} " + repeat(200, func(i int) string {
			return fmt.Sprintf("fragment F%d on Query { __typename } ", i)
		}), code: selectionLimitExceeded},
		{name: "unused fragment", query: "{ __typename } fragment U on Query { " + strings.Repeat("__typename ", 1000) + "}", code: selectionLimitExceeded},
		{name: "duplicate fragment", query: "{ ...U } fragment U on Query { __typename } fragment U on Query { " + strings.Repeat("__typename ", 1000) + "}", code: selectionLimitExceeded},
		{name: "many operations", operationName: "Q0", query: repeat(120, func(i int) string {
			return fmt.Sprintf("query Q%d { ...F } ", i)
		}) + "fragment F on Query { " + repeat(10, func(i int) string {
			return fmt.Sprintf("a%d: __typename ", i)
		}) + "}", code: selectionLimitExceeded},
		{name: "many fragments", query: "{ ...F0 } " + repeat(1200, func(i int) string {
			return fmt.Sprintf("fragment F%d on Query { a%d: __typename } ", i, i)
		}), code: "GRAPHQL_PARSE_FAILED"},
		{name: "many variables", query: "query(" + repeat(3000, func(i int) string {
			return fmt.Sprintf("$v%d: Int ", i)
		}) + ") { __typename }", code: "GRAPHQL_PARSE_FAILED"},
		{name: "many directives", query: "{ __typename " + strings.Repeat("@skip(if: false) ", 2000) + "}", code: "GRAPHQL_PARSE_FAILED"},
		{name: "many arguments", query: "{ " + strings.Repeat(`__type(`+repeat(1000, func(i int) string {
			return fmt.Sprintf("a%d: %d ", i, i)
		})+`) { name } `, 2) + "}", code: "GRAPHQL_PARSE_FAILED"},
	}
}

// TestDocumentLimitsRefuseBeforeValidation sends each attack through the
// handler: it is refused with its code, as a request error (200 under
// application/json, 400 without data under
// application/graphql-response+json), and validation never runs.
//
// The process CPU each refusal takes is bounded too, loosely. Measured on
// 2 shared cores, refusing one took 0.1 ms to 6 ms (up to 17 ms with
// -race, GC included), parsing to the token limit the costliest; before
// the fix, the first and third took 1.4 s and 1.0 s, and documents up to
// MAX_QUERY_BYTES up to 23 s (BenchmarkRefusedDocuments).
func TestDocumentLimitsRefuseBeforeValidation(t *testing.T) {
	h, validated := observedHandler(defaultOptions)
	const cpuBound = 100 * time.Millisecond
	for _, a := range attacks() {
		t.Run(a.name, func(t *testing.T) {
			for _, accept := range []string{"application/json", "application/graphql-response+json"} {
				before := validated.Load()
				cpu0, measured := processCPU()
				got := send(t, h, accept, a.query, a.operationName)
				cpu1, _ := processCPU()
				if got.code() != a.code {
					t.Fatalf("%s: %d %+v; want %s", accept, got.status, got.body.Errors, a.code)
				}
				wantStatus := http.StatusOK
				if accept == "application/graphql-response+json" {
					wantStatus = http.StatusBadRequest
					if got.hasData {
						t.Errorf("%s: a data entry in a request error", accept)
					}
				}
				if got.status != wantStatus {
					t.Errorf("%s: status %d; want %d", accept, got.status, wantStatus)
				}
				if n := validated.Load() - before; n != 0 {
					t.Errorf("%s: validation ran %d times", accept, n)
				}
				if took := cpu1 - cpu0; measured && took > cpuBound {
					t.Errorf("%s: refusing took %v of CPU; want under %v", accept, took, cpuBound)
				}
			}
		})
	}
}

// graphiqlIntrospection is graphql-js's getIntrospectionQuery() with every
// option on, as GraphiQL sends it.
const graphiqlIntrospection = `query IntrospectionQuery {
  __schema {
    description
    queryType { name kind }
    mutationType { name kind }
    subscriptionType { name kind }
    types { ...FullType }
    directives { name description isRepeatable locations args(includeDeprecated: true) { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description specifiedByURL isOneOf
  fields(includeDeprecated: true) { name description args(includeDeprecated: true) { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue {
  name description type { ...TypeRef } defaultValue isDeprecated deprecationReason
}
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } }
}`

// legitimateDocuments are documents that clients send: GraphiQL's
// introspection, the e2e tests' Apollo Client operations (which add
// __typename to every selection set), and ones that reuse fragments.
var legitimateDocuments = []string{
	graphiqlIntrospection,
	`mutation Signup($input: SignupInput!) { signup(input: $input) { accessToken refreshToken tokenType expiresIn scope user { id username __typename } __typename } }`,
	`mutation Login($username: String!, $password: String!) { login(username: $username, password: $password) { accessToken refreshToken __typename } }`,
	`mutation Refresh($refreshToken: String!) { refreshToken(refreshToken: $refreshToken) { accessToken refreshToken __typename } }`,
	`query Me { me { id username __typename } }`,
	`mutation Logout { logout }`,
	`mutation($u: String!, $p: String!) { signup(input: {username: $u, password: $p}) { accessToken } }`,
	`{ me { ...User sessions { ...Session } } users(first: 50) { edges { cursor node { ...User sessions { ...Session } } } pageInfo { hasNextPage endCursor } } }
	 fragment User on User { __typename id username email fullName disabled scopes createdAt }
	 fragment Session on Session { __typename id createdAt lastUsedAt expiresAt clientId userAgent current }`,
	`query A { me { id ...Names ... on User { id username } } } query B { __typename }
	 fragment Names on User { id username fullName }`,
	`{ __typename ` + strings.Repeat("... on Query { __typename } ", 30) + `}`,
}

// TestDocumentLimitsLetLegitimateDocumentsThrough: the documents clients
// send pass the limits; the anonymous ones are answered with data, and
// GraphiQL's introspection with the schema.
func TestDocumentLimitsLetLegitimateDocumentsThrough(t *testing.T) {
	l := newDocumentLimits(defaultOptions.MaxComplexity, nil)
	for _, query := range legitimateDocuments {
		doc, err := parser.ParseQuery(&ast.Source{Input: query})
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range doc.Operations {
			p := &graphql.RawParams{Query: query, OperationName: op.Name}
			if err := l.MutateOperationParameters(context.Background(), p); err != nil {
				t.Errorf("%.60q, operation %q: %v", query, op.Name, err)
			}
		}
	}
	h, validated := observedHandler(defaultOptions)
	for _, query := range []string{graphiqlIntrospection, legitimateDocuments[len(legitimateDocuments)-1]} {
		got := send(t, h, "application/json", query, "")
		if got.status != http.StatusOK || len(got.body.Errors) != 0 || !bytes.HasPrefix(got.body.Data, []byte("{")) {
			t.Errorf("%.60q: %d %+v", query, got.status, got.body.Errors)
		}
	}
	if got := validated.Load(); got != 2 {
		t.Errorf("validated %d documents; want 2", got)
	}
}

// TestDocumentLimitsCountComplexityAsGqlgen: the fields countSelections
// counts for an operation are the complexity gqlgen's limit computes after
// validation, so that the operations it refuses early are the ones gqlgen
// would refuse late.
func TestDocumentLimitsCountComplexityAsGqlgen(t *testing.T) {
	es := generated.NewExecutableSchema(generated.Config{Resolvers: &Resolver{}})
	for _, query := range append(legitimateDocuments,
		"{ ...F ...F ... on Query { ...F __typename } } fragment F on Query { __typename a: __typename }",
		fragmentChain(6),
		`{ __type(name: "User") { name fields { name type { ...T } } } __schema { types { name } } } fragment T on __Type { kind ofType { kind } }`,
	) {
		doc, err := parser.ParseQuery(&ast.Source{Input: query})
		if err != nil {
			t.Fatal(err)
		}
		if errs := validator.Validate(es.Schema(), doc); len(errs) != 0 {
			t.Fatalf("%.60q: %v", query, errs)
		}
		for _, op := range doc.Operations {
			want := complexity.Calculate(context.Background(), es, op, nil)
			if got := countSelections(doc, op.Name, 1<<20, 1<<20).fields; got != want {
				t.Errorf("%.60q, operation %q: %d fields; gqlgen's complexity is %d", query, op.Name, got, want)
			}
		}
	}
}

// TestCountSelections pins what countSelections counts.
func TestCountSelections(t *testing.T) {
	for _, tc := range []struct {
		query                           string
		fields, selections, comparisons int
	}{
		{"{ __typename }", 1, 1, 0},
		{"{ a: __typename b: __typename }", 2, 2, 0},
		{"{ __typename __typename __typename }", 3, 3, 3},
		// Fields of one response name merge, and so do their selections:
		// one pair of x (each with 1 selection below) and one pair of y.
		{"{ x: __type(name: \"A\") { y: name } x: __type(name: \"A\") { y: name } }", 4, 4, 3 + 1 + 1},
		// Arguments count their product: 2 × 2.
		{"{ x: __type(name: \"A\", b: 1) { name } x: __type(name: \"A\", b: 1) { name } }", 4, 4, 3 + 4 + 1},
		// Two spreads of F, each adding 2 selections: 1+2+2, and the fields
		// of F merge: one pair of __typename and one of a.
		{"{ ...F ...F } fragment F on Query { __typename a: __typename }", 4, 6, 5 + 2},
		{"{ ... on Query { __typename } ... { __typename } }", 2, 4, 1},
		// __schema and what it selects count as selections, not fields.
		{"{ __schema { types { name } } __typename }", 1, 4, 0},
		// A fragment spreading itself is followed once; validation refuses
		// it. The two spreads of F side by side count 1+2+0.
		{"{ ...F } fragment F on Query { __typename ...F }", 1, 3, 3},
		// Unused fragments are counted, and duplicates: validation reads them.
		{"{ __typename } fragment U on Query { __typename __typename }", 1, 3, 1},
		{"{ ...U } fragment U on Query { __typename } fragment U on Query { __typename __typename }", 1, 4, 1},
		// An unknown fragment adds only its spread.
		{"{ ...Nowhere }", 0, 1, 0},
	} {
		doc, err := parser.ParseQuery(&ast.Source{Input: tc.query})
		if err != nil {
			t.Fatal(err)
		}
		got := countSelections(doc, "", 1<<20, 1<<20)
		if got.fields != tc.fields || got.selections != tc.selections || got.comparisons != tc.comparisons {
			t.Errorf("%s: %d fields, %d selections, %d comparisons; want %d, %d, %d", tc.query,
				got.fields, got.selections, got.comparisons, tc.fields, tc.selections, tc.comparisons)
		}
	}
}

// TestCountSelectionsStops: however fragments multiply, the walk stops
// just past the limit, so its work is bounded by it.
func TestCountSelectionsStops(t *testing.T) {
	doc, err := parser.ParseQuery(&ast.Source{Input: fragmentChain(60)}) // 2^60 spreads
	if err != nil {
		t.Fatal(err)
	}
	got := countSelections(doc, "", 300, 1100)
	if got.fields != 301 || got.selections > 1100 {
		t.Errorf("stopped at %d fields, %d selections; want 301 fields and at most 1100 selections", got.fields, got.selections)
	}
}

// BenchmarkRefusedDocuments reports the CPU time (cpu-ms/op, of the whole
// process, GC included) that the costliest documents up to MAX_QUERY_BYTES
// cost the handler, and its answer's code. Measured on 2 shared cores,
// before the fix with -benchtime 1x:
//
//	                                               before      after
//	one field repeated, 121 KB                     22,900 ms   6.5 ms (token limit)
//	one field repeated, 5400 tokens (59 KB)         6,500 ms   4.7 ms
//	fields with selections repeated, 124 KB        16,000 ms   4.8 ms (token limit)
//	fragments spreading fragments, 1 KB             2,000 ms   0.13 ms
//	fragments spreading fragments under __schema    1,600 ms   0.14 ms (answered before)
//
// Each more level of fragments doubled the time before: 30 levels (1.2 KB)
// would take about two minutes.
func BenchmarkRefusedDocuments(b *testing.B) {
	h, _ := observedHandler(defaultOptions)
	for _, a := range []attack{
		{name: "one field repeated, 121 KB", query: "{ " + strings.Repeat("__typename ", 11000) + "}"},
		{name: "one field repeated, 5400 tokens", query: "{ " + strings.Repeat("__typename ", 5400) + "}"},
		{name: "fields with selections repeated, 124 KB", query: "{ " + strings.Repeat(`__type(name: "Query") { name } `, 4000) + "}"},
		{name: "fragments spreading fragments, 1 KB", query: fragmentChain(24)},
		{name: "fragments spreading fragments under __schema, 1 KB", query: introspectionChain(24)},
	} {
		b.Run(a.name, func(b *testing.B) {
			var code string
			cpu0, _ := processCPU()
			for b.Loop() {
				code = send(b, h, "application/json", a.query, "").code()
			}
			cpu1, _ := processCPU()
			b.ReportMetric(float64(cpu1-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
			b.Logf("%d bytes: %s", len(a.query), code)
		})
	}
}
