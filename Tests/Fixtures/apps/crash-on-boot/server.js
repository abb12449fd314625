// crash-on-boot: exits at once, like an app missing its configuration.
console.error('Error: DATABASE_URL is not set');
process.exit(1);
