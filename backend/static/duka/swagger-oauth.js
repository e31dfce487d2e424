/* Pre-fill Swagger UI's "Authorize" dialog with the configured OIDC client id (never a secret).
   `ui` is the SwaggerUIBundle instance created by ninja/swagger-ui-init.js. */
(function () {
  const config = JSON.parse(document.getElementById("swagger-settings").textContent);
  const oauth = config.dukaOAuth;
  if (oauth && typeof ui !== "undefined" && ui.initOAuth) {
    ui.initOAuth(oauth);
  }
})();
