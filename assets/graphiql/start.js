// Starts GraphiQL against this server. Headers typed in GraphiQL's header editor are sent
// with every HTTP request and, as the connection_init payload, over the websocket.
(function () {
  var url = new URL('/graphql', window.location.href).href;
  var fetcher = GraphiQL.createFetcher({ url: url, subscriptionUrl: url.replace(/^http/, 'ws') });
  var headers = '{\n  "Authorization": "Bearer <accessToken from signup or login>"\n}';
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultHeaders: headers,
      shouldPersistHeaders: true,
      defaultEditorToolsVisibility: true,
    }),
  );
})();
