//! The IDE at `GET /` (issue #25, item 2): served from the binary with a
//! Content-Security-Policy, every script and stylesheet same-origin, nothing from a CDN.

use crate::helpers::TestApp;

/// The values of every `src="…"` and `href="…"` attribute of `html`.
fn urls(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(at) = rest.find(attr) {
            rest = &rest[at + attr.len()..];
            let end = rest.find('"').expect("a closed attribute");
            out.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    out
}

#[tokio::test]
async fn the_ide_is_served_from_here_with_a_content_security_policy() {
    let app = TestApp::spawn().await;
    let resp = app.client.get(app.url("/")).send().await.expect("sent");
    assert_eq!(resp.status(), 200);
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(header("content-type").starts_with("text/html"));
    let csp = header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self';",
        "connect-src 'self'",
    ] {
        assert!(csp.contains(directive), "{directive} not in {csp}");
    }
    let html = resp.text().await.expect("a page");
    for external in ["unpkg", "jsdelivr", "http://", "https://", "//"] {
        // `//` also catches protocol-relative URLs.
        let bad: Vec<String> = urls(&html)
            .into_iter()
            .filter(|u| u.contains(external))
            .collect();
        assert!(bad.is_empty(), "{external}: {bad:?}");
    }
    assert!(!html.contains("unpkg"), "{html}");
    assert!(!html.contains("<script>"), "no inline script: {html}");

    // Every file the page names answers from here, with its type.
    let assets: Vec<String> = urls(&html)
        .into_iter()
        .filter(|u| !u.starts_with("data:"))
        .collect();
    assert!(assets.len() >= 5, "{assets:?}");
    for path in assets {
        assert!(path.starts_with('/'), "{path} is not same-origin");
        let resp = app.client.get(app.url(&path)).send().await.expect("sent");
        assert_eq!(resp.status(), 200, "{path}");
        let content_type = resp.headers()["content-type"].to_str().expect("ASCII");
        let expected = if path.ends_with(".js") {
            "text/javascript"
        } else {
            "text/css"
        };
        assert!(content_type.starts_with(expected), "{path}: {content_type}");
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
        let body = resp.bytes().await.expect("a body");
        assert!(body.len() > 100, "{path} is empty");
    }

    let resp = app
        .client
        .get(app.url("/ide/nothing.js"))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn without_the_ide_its_files_are_not_served_either() {
    let app = TestApp::spawn_with(&["--graphiql", "false"]).await;
    for path in ["/", "/ide/ide.js", "/ide/graphiql-4.1.2.min.js"] {
        let resp = app.client.get(app.url(path)).send().await.expect("sent");
        assert_eq!(resp.status(), 404, "{path}");
    }
}
