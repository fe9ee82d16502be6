// beyond-vibes: inside an agent container with no network, the model proxy is reached through a unix socket the
// harness mounts; this forwards 127.0.0.1:PORT (what the agent is configured with) to that socket.
const net = require("net");
const [port, sock] = process.argv.slice(2);
net.createServer((client) => {
  const upstream = net.connect(sock);
  client.pipe(upstream);
  upstream.pipe(client);
  client.on("error", () => upstream.destroy());
  upstream.on("error", () => client.destroy());
}).listen(Number(port), "127.0.0.1");
