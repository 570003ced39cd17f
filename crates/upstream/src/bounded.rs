//! The HTTP client the connector hands to `openidconnect`: the same `reqwest::Client`, but the
//! answer's body is read with a size bound, so a hostile or broken upstream cannot make TechPass
//! buffer (and then parse) an unbounded body. `openidconnect`'s own `reqwest` adapter reads the
//! whole body with `Response::bytes()`; this one stops at the bound.
//!
//! Limits: it bounds the body only; time bounds are the `reqwest::Client`'s (its timeout), and
//! redirects are its policy too (it must not follow them). It never decompresses.

use std::future::Future;
use std::pin::Pin;

use openidconnect::http;
use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};

use crate::UpstreamError;

/// Largest token endpoint response body read (RFC 6749 §5.1 sets none): an Azure AD response
/// with a large access token and an ID token at [`crate::ID_TOKEN_LIMIT`] fits several times.
pub const TOKEN_RESPONSE_LIMIT: usize = 64 * 1024;
/// Largest discovery document or key set read: Azure AD's are a few KiB each.
pub const DOCUMENT_LIMIT: usize = 256 * 1024;

/// Why a bounded request failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    /// The body (announced by `Content-Length`, or counted while reading) passed the bound.
    #[error("response body exceeds {limit} bytes; not read further")]
    TooLarge { limit: usize },
    /// The screen refused the body before any parser saw it.
    #[error("{0}")]
    Refused(UpstreamError),
    #[error("request failed: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("response could not be rebuilt: {0}")]
    Http(#[from] http::Error),
}

/// Inspects a successful (2xx) body before `openidconnect` parses it.
pub(crate) type Screen = fn(&[u8]) -> Result<(), UpstreamError>;

/// `client` with a body bound and an optional screen; implements `openidconnect`'s
/// [`AsyncHttpClient`].
pub(crate) struct Bounded<'a> {
    client: &'a reqwest::Client,
    limit: usize,
    screen: Option<Screen>,
}

impl<'a> Bounded<'a> {
    pub(crate) fn new(client: &'a reqwest::Client, limit: usize) -> Self {
        Bounded {
            client,
            limit,
            screen: None,
        }
    }

    pub(crate) fn screening(self, screen: Screen) -> Self {
        Bounded {
            screen: Some(screen),
            ..self
        }
    }

    async fn fetch(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let mut response = self.client.execute(request).await?;
        let too_large = HttpError::TooLarge { limit: self.limit };
        if response
            .content_length()
            .is_some_and(|length| length > self.limit as u64)
        {
            return Err(too_large);
        }
        let status = response.status();
        let mut builder = http::Response::builder()
            .status(status)
            .version(response.version());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        // Counted chunk by chunk: `Content-Length` may be absent (chunked) or wrong.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > self.limit {
                return Err(too_large);
            }
            body.extend_from_slice(&chunk);
        }
        if let Some(screen) = self.screen.filter(|_| status.is_success()) {
            screen(&body).map_err(HttpError::Refused)?;
        }
        Ok(builder.body(body)?)
    }
}

impl<'c> AsyncHttpClient<'c> for Bounded<'_> {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.fetch(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers every connection with `head` and then `chunks` in chunked
    /// transfer encoding (no `Content-Length`), so only counting can catch an oversized body.
    async fn chunked_server(chunks: Vec<Vec<u8>>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let chunks = chunks.clone();
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = socket.read(&mut request).await;
                    let mut answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                        transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
                        .to_vec();
                    for chunk in chunks {
                        answer.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                        answer.extend_from_slice(&chunk);
                        answer.extend_from_slice(b"\r\n");
                    }
                    answer.extend_from_slice(b"0\r\n\r\n");
                    let _ = socket.write_all(&answer).await;
                });
            }
        });
        format!("http://{addr}/")
    }

    fn get(url: &str) -> HttpRequest {
        http::Request::get(url).body(Vec::new()).unwrap()
    }

    #[tokio::test]
    async fn bodies_are_counted_without_content_length() {
        let url = chunked_server(vec![vec![b'a'; 600]; 4]).await;
        let client = reqwest::Client::new();
        let exact = Bounded::new(&client, 2400).call(get(&url)).await.unwrap();
        assert_eq!(exact.body().len(), 2400);
        let over = Bounded::new(&client, 2399).call(get(&url)).await;
        assert!(
            matches!(over, Err(HttpError::TooLarge { limit: 2399 })),
            "{over:?}"
        );
    }

    #[tokio::test]
    async fn content_length_over_the_bound_is_refused_before_reading() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            if let Ok((mut socket, _)) = listener.accept().await {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                // Announces a body it never sends: only the header can be what refuses it.
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n{")
                    .await;
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            }
        });
        let client = reqwest::Client::new();
        let url = format!("http://{addr}/");
        let answer = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            Bounded::new(&client, 1000).call(get(&url)),
        )
        .await
        .unwrap();
        assert!(matches!(answer, Err(HttpError::TooLarge { limit: 1000 })));
    }

    #[tokio::test]
    async fn the_screen_sees_successful_bodies() {
        let url = chunked_server(vec![b"{\"id_token\":\"x\"}".to_vec()]).await;
        let client = reqwest::Client::new();
        let refuse: Screen = |_| Err(UpstreamError::MissingIdToken);
        let answer = Bounded::new(&client, 1000)
            .screening(refuse)
            .call(get(&url))
            .await;
        assert!(matches!(
            answer,
            Err(HttpError::Refused(UpstreamError::MissingIdToken))
        ));
    }
}
