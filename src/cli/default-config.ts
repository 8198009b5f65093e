// The first edgepurge.yaml `npm start` writes: a demo account, zone and domain with fresh credentials.
import { randomAlnum } from '../shared/ids.ts';

export interface DemoConfig {
  readonly yaml: string;
  readonly secretId: string;
  readonly secretKey: string;
}

export function demoConfig(): DemoConfig {
  const secretId = `AKID${randomAlnum(32)}`;
  const secretKey = randomAlnum(32);
  const token = randomAlnum(40);
  const yaml = `# EdgePurge configuration (written by \`npm start\`; edit freely, restart to apply).
server: { listen: "127.0.0.1:8080", timezone: "+08:00" }
store:  { driver: sqlite, path: ./data/edgepurge.db }
accounts:
  - appId: 1250000001
    name: demo
    projectId: 0
    credentials: [{ secretId: ${secretId}, secretKey: ${secretKey} }]
    zones:
      - zoneId: zone-demo0001
        name: example.com
        domains: [{ host: www.example.com, origin: "http://127.0.0.1:8090" }]
nodes: [{ id: edge-1, listen: "127.0.0.1:8081", token: ${token} }]
demo: { origin: "127.0.0.1:8090" }   # edgepurge start serves a small demo origin here
`;
  return { yaml, secretId, secretKey };
}
