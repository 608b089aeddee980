import type { Metadata } from "next";
import "./globals.css";

// System fonts only (globals.css): next/font's Google loader downloads fonts
// during `next build`, and the images are built without that network access.
// For a custom font, commit its files and use next/font/local.

export const metadata: Metadata = {
  title: "app1",
  description: "app1",
};

export default function RootLayout({ children }: LayoutProps<"/">) {
  return (
    <html lang="en">
      <body>{children}</body>
    </html>
  );
}
