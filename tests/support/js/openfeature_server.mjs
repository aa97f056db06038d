// The OpenFeature server SDK for Node with its OFREP provider, as a customer's backend uses
// them, against a live Edgeflags: prints every evaluation's details as one JSON object.
// Usage: node openfeature_server.mjs <base URL> <client key>
import { OpenFeature } from "@openfeature/server-sdk";
import { OFREPProvider } from "@openfeature/ofrep-provider";

const [baseUrl, key] = process.argv.slice(2);
await OpenFeature.setProviderAndWait(
  new OFREPProvider({ baseUrl, headers: [["Authorization", `Bearer ${key}`]] }),
);
const client = OpenFeature.getClient();
const pro = { targetingKey: "user-1", plan: "pro" };
const details = {
  smartReply: await client.getBooleanDetails("smart-reply", false, pro),
  greeting: await client.getStringDetails("greeting", "Hi", pro),
  temperature: await client.getNumberDetails("temperature", 0, pro),
  compose: await client.getObjectDetails("compose/config", {}, pro),
  splitWithKey: await client.getStringDetails("lead-scoring-model", "none", pro),
  splitWithoutKey: await client.getStringDetails("lead-scoring-model", "none", { plan: "pro" }),
  badContext: await client.getStringDetails("greeting", "Hi", { targetingKey: 7 }),
  missing: await client.getBooleanDetails("does-not-exist", false, pro),
  wrongType: await client.getBooleanDetails("greeting", false, pro),
};
await OpenFeature.close();
console.log(JSON.stringify(details));
