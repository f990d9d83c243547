// Audits a running tenantql against the GraphQL-over-HTTP spec with graphql-http's own
// server audits. Usage: node audit.mjs http://127.0.0.1:8000/graphql
// Exits 1 on any MUST failure; SHOULD warnings are listed but do not fail the run.
import { serverAudits } from 'graphql-http';

const url = process.argv[2] ?? 'http://127.0.0.1:8000/graphql';
const results = await Promise.all(serverAudits({ url }).map((audit) => audit.fn()));
let must = 0;
let should = 0;
let passed = 0;
for (const result of results) {
  if (result.status === 'ok') {
    passed += 1;
    continue;
  }
  if (result.status === 'error') must += 1;
  else should += 1;
  const body = result.response ? await result.response.text().catch(() => '') : '';
  console.log(`${result.status === 'error' ? 'MUST  ' : 'SHOULD'} ${result.name}: ${result.reason}`);
  if (body) console.log(`       response: ${body.slice(0, 200)}`);
}
console.log(`graphql-http audit: ${passed} passed, ${must} MUST failures, ${should} SHOULD warnings`);
process.exit(must > 0 ? 1 : 0);
