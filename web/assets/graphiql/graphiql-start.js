// Mounts GraphiQL on the page served at GET /graphql. The page carries the
// CSRF token in a meta tag; cookie-authenticated requests must send it.
(function () {
  var meta = document.querySelector('meta[name="csrf-token"]');
  var headers = { 'X-CSRF-Token': meta ? meta.getAttribute('content') : '' };
  var fetcher = GraphiQL.createFetcher({ url: '/graphql', headers: headers });
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(React.createElement(GraphiQL, {
    fetcher: fetcher,
    defaultEditorToolsVisibility: true,
    defaultQuery: '# Every page of Switchboard runs an operation of this schema as you.\n' +
      '{\n  viewer {\n    user { username role }\n    account { name balance { formatted } }\n  }\n}\n'
  }));
})();
