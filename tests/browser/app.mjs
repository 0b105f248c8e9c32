// A storefront page on another origin, as a frontend team would write it: Apollo Client 4
// with automatic persisted queries (PersistedQueryLink, hashes by SubtleCrypto, hashed
// queries over GET) and subscriptions over graphql-ws (GraphQLWsLink). `origins.mjs` bundles
// it with esbuild and serves it from a second HTTP server; the API's address and the demo
// account come in the page's query string.
//
// It signs in, reads the catalog and `me` with the token, places an order and subscribes to
// its status; `window.storefront` reports each step for the test, and the page shows them.

import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { SetContextLink } from "@apollo/client/link/context";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { getMainDefinition } from "@apollo/client/utilities";
import { createClient } from "graphql-ws";

const params = new URLSearchParams(location.search);
const api = params.get("api");
const state = (window.storefront = { steps: [], error: null, subscribed: false, live: [] });

function step(name, detail = "") {
  state.steps.push(name);
  const li = document.createElement("li");
  li.textContent = detail ? `${name}: ${detail}` : name;
  document.querySelector("#steps").append(li);
}

async function sha256(text) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

let token = null;
const auth = new SetContextLink((prev) => ({
  headers: { ...prev.headers, ...(token ? { authorization: `Bearer ${token}` } : {}) },
}));
const http = ApolloLink.from([
  auth,
  new PersistedQueryLink({ sha256, useGETForHashedQueries: true }),
  new HttpLink({ uri: `${api}/graphql` }),
]);
const ws = new GraphQLWsLink(
  createClient({
    url: `${api.replace(/^http/, "ws")}/graphql/ws`,
    connectionParams: () => ({ Authorization: `Bearer ${token}` }),
    on: { connected: () => step("websocket connected") },
  }),
);
const isSubscription = ({ query }) => {
  const d = getMainDefinition(query);
  return d.kind === "OperationDefinition" && d.operation === "subscription";
};
const client = new ApolloClient({
  link: ApolloLink.split(isSubscription, ws, http),
  cache: new InMemoryCache(),
});

const LOGIN = gql`
  mutation Login($i: LoginInput!) {
    login(input: $i) { token member { id displayName } }
  }
`;
const GRID = gql`
  query Grid {
    products(first: 12) {
      edges { node { id name skus { id price stock } } }
    }
  }
`;
const ME = gql`
  query Me {
    me { id displayName roles }
  }
`;
const PLACE = gql`
  mutation Place($i: PlaceOrderInput!) {
    placeOrder(input: $i) { id status total }
  }
`;
const LIVE = gql`
  subscription Live($id: ID!) {
    orderStatusChanged(orderId: $id) { id status }
  }
`;

async function main() {
  const { data: login } = await client.mutate({
    mutation: LOGIN,
    variables: { i: { email: params.get("email"), password: params.get("password") } },
  });
  token = login.login.token;
  step("signed in", login.login.member.displayName);

  // Twice: the first GET names a hash the server does not know yet (Apollo then sends the
  // text), the second finds it.
  let grid;
  for (const round of ["registered", "hit"]) {
    ({ data: grid } = await client.query({ query: GRID, fetchPolicy: "network-only" }));
    step(`persisted catalog query (${round})`, `${grid.products.edges.length} products`);
  }
  const { data: me } = await client.query({ query: ME, fetchPolicy: "network-only" });
  step("me with the token", `${me.me.displayName} ${me.me.roles.join(",")}`);

  const sku = grid.products.edges.flatMap((e) => e.node.skus).find((s) => s.stock > 0);
  const { data: placed } = await client.mutate({
    mutation: PLACE,
    variables: { i: { lines: [{ skuId: sku.id, quantity: 1 }] } },
  });
  const order = placed.placeOrder;
  state.order = order;
  step("order placed", `${order.status} ${order.total}`);

  client.subscribe({ query: LIVE, variables: { id: order.id } }).subscribe({
    next: ({ data }) => {
      state.live.push(data.orderStatusChanged.status);
      step("live order status", data.orderStatusChanged.status);
    },
    error: (e) => {
      state.error = String(e);
      step("subscription failed", String(e));
    },
  });
  state.subscribed = true;
  step("subscribed to the order's status");
}

main().catch((e) => {
  state.error = String(e?.stack ?? e);
  step("failed", String(e));
});
