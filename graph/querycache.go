package graph

import (
	"context"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/lexer"
)

// Bounds of the parsed-query cache.
const (
	// maxCachedQueryBytes is the longest query text kept. Operations that
	// applications send again and again are shorter (GraphiQL's
	// introspection query is about 2 KiB); a longer one is parsed and
	// validated on every request instead.
	maxCachedQueryBytes = 4 << 10
	// queryCacheBudget bounds the estimated bytes of all cached documents
	// (queryBytes).
	queryCacheBudget = 4 << 20
	// bytesPerToken is what a parsed and validated document holds per
	// lexical token of its query, rounded up from the most measured: a field
	// selection ("__typename ", one token) holds about 400 bytes, a list
	// element or a directive's token about 210, a comment inside a selection
	// set about 100, GraphiQL's introspection query about 110 on average.
	// Counting tokens, not bytes, is what bounds documents made of many
	// short tokens ({ __typename __typename … }, lists of "", "#" lines).
	bytesPerToken = 512
)

// queryCache is the executor's cache of parsed and validated queries, keyed
// by query text and bounded in bytes. gqlgen's lru.New(n) bounds only the
// number of documents, while any anonymous client may send queries of up to
// MAX_QUERY_BYTES, each document holding its whole text (every ast.Position
// points at the ast.Source): 1000 distinct queries of 128 KiB pinned 128 MiB.
// Here a query longer than maxQuery is never kept, and the documents kept
// weigh at most budget by queryBytes, the least recently used leaving first.
// A flood of distinct queries therefore costs the cache its hits, not the
// server its memory.
type queryCache struct {
	maxQuery, budget int

	mu    sync.Mutex
	lru   *simplelru.LRU[string, cachedQuery] // its eviction callback keeps bytes
	bytes int                                 // sum of the weights in lru
}

type cachedQuery struct {
	doc    *ast.QueryDocument
	weight int
}

var _ graphql.Cache[*ast.QueryDocument] = (*queryCache)(nil)

// newQueryCache returns a cache that keeps queries of at most maxQuery bytes
// while their documents weigh at most budget bytes in all.
func newQueryCache(maxQuery, budget int) *queryCache {
	c := &queryCache{maxQuery: maxQuery, budget: budget}
	// Every entry weighs at least bytesPerToken, so the entry limit is never
	// what evicts; the budget is.
	lru, err := simplelru.NewLRU(budget/bytesPerToken+1, func(_ string, q cachedQuery) {
		c.bytes -= q.weight // under c.mu: simplelru calls back from Add and RemoveOldest
	})
	if err != nil {
		panic(err) // only for a size below 1
	}
	c.lru = lru
	return c
}

// Get returns the document cached for query and marks it recently used.
func (c *queryCache) Get(_ context.Context, query string) (*ast.QueryDocument, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	q, ok := c.lru.Get(query)
	return q.doc, ok
}

// contains reports whether query is cached, without marking it used: its
// document passed validation, and documentLimits before it. Longer queries
// than any kept are not looked up, which would hash all their text.
func (c *queryCache) contains(query string) bool {
	if len(query) > c.maxQuery {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Contains(query)
}

// Add caches doc, the parsed and validated query, unless the query is too
// long or its document would outweigh the whole budget, evicting the least
// recently used documents until the rest fit in the budget.
func (c *queryCache) Add(_ context.Context, query string, doc *ast.QueryDocument) {
	if len(query) > c.maxQuery {
		return
	}
	weight := queryBytes(query)
	if weight > c.budget {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.lru.Get(query); ok {
		return // a concurrent request parsed the same text first
	}
	c.lru.Add(query, cachedQuery{doc: doc, weight: weight})
	c.bytes += weight
	for c.bytes > c.budget {
		c.lru.RemoveOldest()
	}
}

// queryBytes estimates the memory a cached document of query holds: its
// text, which the document keeps, and bytesPerToken for each lexical token
// and for the entry itself. Lexing costs a fraction of the parse and
// validation that precede every Add.
func queryBytes(query string) int {
	tokens := 1
	lex := lexer.New(&ast.Source{Input: query})
	for {
		tok, err := lex.ReadToken()
		if err != nil || tok.Kind == lexer.EOF {
			break
		}
		tokens++
	}
	return len(query) + tokens*bytesPerToken
}
