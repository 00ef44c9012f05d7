// Java client 3.9.1 static membership (group.instance.id): "static-b" starts alone, then "static-a" joins and
// they share TOPIC. Once the group is stable, "static-b" (the leader) is closed (a static member sends no
// LeaveGroup) and a new consumer with the same instance id starts at once, well within session.timeout.ms.
// The program waits until the new consumer holds partitions and "static-a" has completed at least three more
// heartbeats, then prints one line:
// {"before":{...},"after":{...},"a_rebalances_before":n,"a_rebalances_after":n}
// where each snapshot is {"a":{"generation":g,"partitions":[...]},"b":{...},
//                         "admin":{"state":..,"members":[{"instance":..,"member":..,"partitions":[...]}]}}
// and a_rebalances counts the rebalance-listener callbacks of "static-a".
//
// usage: java -cp '.tools/jars/*' StaticMember.java BOOTSTRAP TOPIC GROUP PARTITIONS
import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class StaticMember {
    static final long DEADLINE_MS = 60_000;

    static class Member implements Runnable, ConsumerRebalanceListener {
        final String name;
        final Properties props;
        final String topic;
        final Thread thread;
        volatile boolean stop;
        volatile List<Integer> partitions = List.of();
        volatile int generation = -1;
        volatile double heartbeats;
        volatile int callbacks;
        volatile Throwable failure;

        Member(String name, Properties props, String topic) {
            this.name = name;
            this.props = props;
            this.topic = topic;
            this.thread = new Thread(this, name);
        }

        public void onPartitionsRevoked(Collection<TopicPartition> ps) {
            callbacks++;
        }

        public void onPartitionsAssigned(Collection<TopicPartition> ps) {
            callbacks++;
        }

        public void run() {
            try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
                c.subscribe(List.of(topic), this);
                while (!stop) {
                    c.poll(Duration.ofMillis(100));
                    List<Integer> ps = new ArrayList<>();
                    for (TopicPartition tp : c.assignment()) ps.add(tp.partition());
                    Collections.sort(ps);
                    generation = c.groupMetadata().generationId();
                    partitions = ps;
                    for (Map.Entry<MetricName, ? extends Metric> e : c.metrics().entrySet()) {
                        MetricName n = e.getKey();
                        if (n.name().equals("heartbeat-total") && n.group().equals("consumer-coordinator-metrics")) {
                            heartbeats = ((Number) e.getValue().metricValue()).doubleValue();
                        }
                    }
                }
            } catch (Throwable t) {
                failure = t;
            }
        }

        String snapshot() {
            return "{\"generation\":" + generation + ",\"partitions\":" + partitions + "}";
        }
    }

    static Member start(String instance, String bootstrap, String group, String topic) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, instance);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, instance);
        p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, RangeAssignor.class.getName());
        p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 20000);
        p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 300);
        p.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, 30000);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        Member m = new Member(instance, p, topic);
        m.thread.start();
        return m;
    }

    static void check(Member... ms) {
        for (Member m : ms) if (m.failure != null) throw new RuntimeException(m.name + " failed", m.failure);
    }

    static void await(String what, java.util.function.BooleanSupplier cond, Member... ms) throws InterruptedException {
        long deadline = System.currentTimeMillis() + DEADLINE_MS;
        while (!cond.getAsBoolean()) {
            check(ms);
            if (System.currentTimeMillis() > deadline) throw new RuntimeException("timed out waiting for " + what);
            Thread.sleep(50);
        }
    }

    static String describe(Admin admin, String group) throws Exception {
        ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
        List<MemberDescription> ms = new ArrayList<>(d.members());
        ms.sort(Comparator.comparing(m -> m.groupInstanceId().orElse("")));
        StringBuilder b = new StringBuilder();
        for (MemberDescription m : ms) {
            List<Integer> ps = new ArrayList<>();
            for (TopicPartition tp : m.assignment().topicPartitions()) ps.add(tp.partition());
            Collections.sort(ps);
            if (b.length() > 0) b.append(',');
            b.append("{\"instance\":\"").append(m.groupInstanceId().orElse("")).append("\",\"member\":\"").append(m.consumerId())
                .append("\",\"partitions\":").append(ps).append('}');
        }
        return "{\"state\":\"" + d.state() + "\",\"members\":[" + b + "]}";
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], group = args[2];
        int partitions = Integer.parseInt(args[3]);
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        ap.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000);
        // static-b starts alone and takes every partition, so when static-a joins, static-b rejoins as the
        // group leader with owned partitions in its subscription; its restarted self owns nothing, so the
        // coordinator sees different subscription bytes for the same protocol.
        Member b = start("static-b", bootstrap, group, topic);
        Member a = null, b2 = null;
        try (Admin admin = Admin.create(ap)) {
            final Member fb = b;
            await("static-b alone to own every partition", () -> fb.partitions.size() == partitions, b);
            a = start("static-a", bootstrap, group, topic);
            final Member fa = a;
            await("a stable 2-member group", () -> fa.partitions.size() == partitions / 2 && fb.partitions.size() == partitions / 2
                && fa.generation == fb.generation && fa.generation > 0, a, b);
            String adminBefore = describe(admin, group);
            String before = "{\"a\":" + a.snapshot() + ",\"b\":" + b.snapshot() + ",\"admin\":" + adminBefore + "}";
            int aCallbacksBefore = a.callbacks;

            b.stop = true;
            b.thread.join(30_000);
            check(b);
            b2 = start("static-b", bootstrap, group, topic);
            final Member fb2 = b2;
            await("restarted static-b to get partitions", () -> !fb2.partitions.isEmpty() && fb2.generation > 0, a, b2);
            double hb = a.heartbeats;
            await("three more heartbeats of static-a", () -> fa.heartbeats >= hb + 3, a, b2);
            String adminAfter = describe(admin, group);
            String after = "{\"a\":" + a.snapshot() + ",\"b\":" + b2.snapshot() + ",\"admin\":" + adminAfter + "}";
            System.out.println("{\"before\":" + before + ",\"after\":" + after + ",\"a_rebalances_before\":" + aCallbacksBefore
                + ",\"a_rebalances_after\":" + a.callbacks + "}");
        } finally {
            for (Member m : new Member[] {a, b, b2}) if (m != null) m.stop = true;
            for (Member m : new Member[] {a, b, b2}) if (m != null) m.thread.join(30_000);
        }
    }
}
