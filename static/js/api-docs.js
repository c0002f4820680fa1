// The REST API's docs page: Swagger UI on our schema. A signed-in browser's requests carry its CSRF token.
const root = document.getElementById("swagger-ui");

window.SwaggerUIBundle({
  url: root.dataset.schemaUrl,
  dom_id: "#swagger-ui",
  presets: [window.SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  deepLinking: true,
  requestInterceptor: (request) => {
    if (request.method && request.method !== "GET") request.headers["X-CSRFToken"] = root.dataset.csrfToken;
    return request;
  },
});
