// Starts GraphiQL on this page's own endpoints: queries and mutations over HTTP, subscriptions
// over graphql-ws (the `graphql-transport-ws` protocol) on the same origin. A file, not an
// inline script, so that the page's Content-Security-Policy can say `script-src 'self'`.
(function () {
  "use strict";
  var root = document.getElementById("graphiql");
  var url = new URL(root.dataset.endpoint, window.location.href);
  var ws = new URL(root.dataset.subscriptionEndpoint, window.location.href);
  ws.protocol = ws.protocol === "https:" ? "wss:" : "ws:";
  var fetcher = GraphiQL.createFetcher({ url: url.href, subscriptionUrl: ws.href });
  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, { fetcher: fetcher, defaultEditorToolsVisibility: true })
  );
})();
