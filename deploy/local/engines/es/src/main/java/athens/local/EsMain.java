package athens.local;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;

import org.codelibs.elasticsearch.runner.ElasticsearchClusterRunner;

/**
 * Runs one Elasticsearch 7.10.2 node in this JVM until it is killed (SIGTERM closes it cleanly).
 *
 * System properties: athens.home (base dir, required), athens.http.port (required),
 * athens.cluster.name (optional). HTTP and transport bind to 127.0.0.1 only.
 */
public final class EsMain {
    private EsMain() {
    }

    public static void main(final String[] args) throws Exception {
        final String home = required("athens.home");
        final String httpPort = required("athens.http.port");
        final String clusterName = System.getProperty("athens.cluster.name", "athens-local-es");

        // Console-only logging (stdout is redirected to a log file by deploy/local/up).
        writeLogConfig(Paths.get(home, "node_1", "config"));

        final ElasticsearchClusterRunner runner = new ElasticsearchClusterRunner();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                runner.close();
            } catch (final IOException e) {
                System.err.println("close failed: " + e);
            }
        }, "athens-shutdown"));
        runner.onBuild((index, settings) -> settings //
                .put("network.host", "127.0.0.1") //
                .put("http.port", httpPort) //
                .put("discovery.type", "single-node") //
                .putList("node.roles", "master", "data", "ingest") //
                // The dev disk may be fairly full: never block writes because of watermarks.
                .put("cluster.routing.allocation.disk.threshold_enabled", false));
        try {
            runner.build(ElasticsearchClusterRunner.newConfigs() //
                    .basePath(home).numOfNode(1).clusterName(clusterName).build());
        } catch (final RuntimeException e) {
            e.printStackTrace();
            System.exit(1);
        }
        System.out.println("ATHENS-ENGINE-STARTED http://127.0.0.1:" + httpPort);
        while (!runner.isClosed()) {
            Thread.sleep(5000);
        }
    }

    static String required(final String name) {
        final String value = System.getProperty(name);
        if (value == null || value.isEmpty()) {
            throw new IllegalArgumentException("missing -D" + name);
        }
        return value;
    }

    static void writeLogConfig(final Path configDir) throws IOException {
        Files.createDirectories(configDir);
        final String props = String.join("\n", //
                "status = error", //
                "appender.console.type = Console", //
                "appender.console.name = console", //
                "appender.console.layout.type = PatternLayout", //
                "appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] %m%n", //
                "rootLogger.level = info", //
                "rootLogger.appenderRef.console.ref = console", "");
        Files.write(configDir.resolve("log4j2.properties"), props.getBytes(StandardCharsets.UTF_8));
    }
}
