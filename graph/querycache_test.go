package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"

	"authql/graph/generated"
)

// cachingServer is gqlgen's executor over our schema with cache, recording
// the document each operation ran from. Only __typename is asked for, so
// no resolver needs the auth service.
func cachingServer(cache graphql.Cache[*ast.QueryDocument]) (http.Handler, *[]*ast.QueryDocument) {
	srv := handler.New(generated.NewExecutableSchema(generated.Config{
		Resolvers:  &Resolver{},
		Directives: generated.DirectiveRoot{Auth: authDirective},
	}))
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(cache)
	var docs []*ast.QueryDocument
	srv.AroundOperations(func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		docs = append(docs, graphql.GetOperationContext(ctx).Doc)
		return next(ctx)
	})
	return srv, &docs
}

// post runs query on srv and fails unless it answers data.
func post(t *testing.T, srv http.Handler, query string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"query": query})
	req := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if !strings.Contains(rec.Body.String(), `"data":{`) {
		t.Fatalf("%.60q: %d %.200s", query, rec.Code, rec.Body)
	}
}

// checkBudget fails unless c's byte count is the sum of its entries'
// weights, within its budget, and no entry's query is over its limit.
func checkBudget(t *testing.T, c *queryCache) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	sum := 0
	for _, query := range c.lru.Keys() {
		q, _ := c.lru.Peek(query)
		sum += q.weight
		if len(query) > c.maxQuery {
			t.Fatalf("a %d-byte query is cached; the limit is %d", len(query), c.maxQuery)
		}
	}
	if sum != c.bytes || c.bytes > c.budget {
		t.Fatalf("%d entries weigh %d, counted %d; budget %d", c.lru.Len(), sum, c.bytes, c.budget)
	}
}

// floodQueries are distinct valid anonymous queries of the kinds that hold
// the most memory per byte or per token, and long ones past the cache's
// limit: what an attacker would send to fill the cache.
func floodQueries(i int) []string {
	return []string{
		fmt.Sprintf("{ q%d: __typename }", i),
		fmt.Sprintf("# %d %s\n{ __typename }", i, strings.Repeat("x", 3*maxCachedQueryBytes)),
		fmt.Sprintf("{ q%d: __typename %s}", i, strings.Repeat("__typename ", 100)),
		fmt.Sprintf("{ q%d: __typename %s__typename }", i, strings.Repeat("#\n", 1000)),
		fmt.Sprintf("{ q%d: __typename %s}", i, strings.Repeat("__typename @skip(if: false) ", 60)),
		fmt.Sprintf("{ q%d: __typename %s}", i, strings.Repeat("...{ __typename } ", 60)),
	}
}

// TestQueryCacheFloodStaysWithinBudget sends a flood of distinct queries,
// short and long, through the executor: the cache's byte count stays within
// its budget, no long query is kept, and the heap the cached documents
// really hold is no more than the count, which checks bytesPerToken.
func TestQueryCacheFloodStaysWithinBudget(t *testing.T) {
	cache := newQueryCache(maxCachedQueryBytes, queryCacheBudget)
	srv, docs := cachingServer(cache)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range 40 {
		for _, q := range floodQueries(i) {
			post(t, srv, q)
		}
		*docs = nil
		checkBudget(t, cache)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d documents counted as %d bytes; the heap grew by %d", cache.lru.Len(), cache.bytes, held)
	if cache.bytes < queryCacheBudget/2 {
		t.Errorf("the flood filled %d bytes of the %d budget; the test sends too little", cache.bytes, queryCacheBudget)
	}
	if held > int64(cache.bytes) {
		t.Errorf("the cached documents hold %d bytes of heap; the estimate, %d, is too low", held, cache.bytes)
	}
	runtime.KeepAlive(cache)
}

// TestQueryCacheServesRepeatedQuery: a short query sent again runs from the
// document parsed the first time; a query over the length limit is parsed
// every time.
func TestQueryCacheServesRepeatedQuery(t *testing.T) {
	srv, docs := cachingServer(newQueryCache(maxCachedQueryBytes, queryCacheBudget))
	short := "{ __typename }"
	long := "# " + strings.Repeat("x", maxCachedQueryBytes) + "\n{ __typename }"
	for _, q := range []string{short, long, short, long} {
		post(t, srv, q)
	}
	if d := *docs; len(d) != 4 || d[0] != d[2] || d[1] == d[3] {
		t.Errorf("documents %p; want the short query's twice, the long one's parsed anew", d)
	}
}

// TestQueryCacheEvictsLeastRecentlyUsed: when a new document does not fit,
// the one used longest ago leaves; one just read stays.
func TestQueryCacheEvictsLeastRecentlyUsed(t *testing.T) {
	ctx := context.Background()
	a, b, c := "{ a: __typename }", "{ b: __typename }", "{ c: __typename }"
	cache := newQueryCache(maxCachedQueryBytes, 2*queryBytes(a)) // room for two
	doc := &ast.QueryDocument{}
	cache.Add(ctx, a, doc)
	cache.Add(ctx, b, doc)
	if _, ok := cache.Get(ctx, a); !ok {
		t.Fatal("a is not cached")
	}
	cache.Add(ctx, c, doc)
	for query, want := range map[string]bool{a: true, b: false, c: true} {
		if _, ok := cache.Get(ctx, query); ok != want {
			t.Errorf("%s cached: %v; want %v", query, ok, want)
		}
	}
	checkBudget(t, cache)
	cache.Add(ctx, "{ d: __typename "+strings.Repeat("__typename ", 100)+"}", doc) // over the budget alone
	if cache.lru.Len() != 2 {
		t.Errorf("a document heavier than the budget displaced others: %d entries", cache.lru.Len())
	}
	checkBudget(t, cache)
}
