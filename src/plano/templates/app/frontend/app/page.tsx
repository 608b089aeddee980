import { BackendHealth } from "./backend-health";

export default function Home() {
  return (
    <main className="page">
      <h1>app1</h1>
      <p>
        Edit <code>app/page.tsx</code> to get started. The backend lives under <code>/api</code>.
      </p>
      <h2>GET /api/health</h2>
      <BackendHealth />
    </main>
  );
}
