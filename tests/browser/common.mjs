// What both browser scripts share: the server they test, the demo password, how long a step
// may take, and GraphQL over plain fetch (outside the browser) for set-up and checks.

export const base = process.env.PUSHHAND_URL ?? "http://127.0.0.1:8000";
export const shots = process.env.SCREENSHOTS ?? ".";
export const PASSWORD = "pushhand-demo-1";
export const PATIENCE = 20_000;

export async function gql(query, variables = {}, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const resp = await fetch(`${base}/graphql`, {
    method: "POST",
    headers,
    body: JSON.stringify({ query, variables }),
  });
  const body = await resp.json();
  if (body.errors) throw new Error(`${query}: ${JSON.stringify(body.errors)}`);
  return body.data;
}

export async function login(email) {
  const q = "mutation($i: LoginInput!) { login(input: $i) { token } }";
  return (await gql(q, { i: { email, password: PASSWORD } })).login.token;
}
