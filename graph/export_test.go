package graph

// What the external tests (package graph_test, which run the handler behind
// the real HTTP edge) share with this package's own.

// DefaultOptions are the server's default limits (config.go).
var DefaultOptions = defaultOptions

// GraphiQLIntrospection is the introspection query GraphiQL sends.
const GraphiQLIntrospection = graphiqlIntrospection
